"""osdefinition: a Ganeti OS (snf-image compatible) that deploys and customizes images.

``params`` parses Ganeti's environment, ``sources``/``formats``/``copy`` put the
image on disk 0, ``customize`` and ``tasks/`` make it the instance's machine,
``progress`` reports it all; ``create`` ties them together.
"""
