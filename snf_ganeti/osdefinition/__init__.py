"""osdefinition: a Ganeti OS (snf-image compatible) that deploys and customizes images.

Not built yet (see the osdefinition issue).
"""
