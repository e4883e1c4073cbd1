"""The Ganeti OS definition directory: API version, variants, parameters, thin scripts.

Generated rather than shipped as files, so packaging and the tests install
the same thing; each script only runs ``snf-ganeti os <script>``.
"""

import os
import shlex

from snf_ganeti import pathutils
from snf_ganeti.osdefinition import diskio, params

SCRIPTS = ("create", "import", "export", "rename", "verify")


def files(command=(pathutils.SNF_GANETI_BIN,), environment=()):
    """{file name: (text, mode)} of the definition; ``command`` runs snf-ganeti."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environment)
    out = {
        "ganeti_api_version": (params.API_VERSION + "\n", 0o644),
        "variants.list": ("".join(v + "\n" for v in diskio.VARIANTS), 0o644),
        "parameters.list": ("".join(f"{name} {text}\n" for name, text in params.PARAMETERS),
                            0o644),
    }
    run = " ".join(shlex.quote(str(c)) for c in command)
    for script in SCRIPTS:
        out[script] = (f"#!/bin/sh\n# Ganeti OS script: snf-ganeti os {script}\n{exports}"
                       f"exec {run} os {script} \"$@\"\n", 0o755)
    return out


def install(directory, command=(pathutils.SNF_GANETI_BIN,), environment=()):
    os.makedirs(directory, exist_ok=True)
    for name, (text, mode) in files(command, environment).items():
        path = os.path.join(directory, name)
        with open(path + ".tmp", "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(path + ".tmp", mode)
        os.replace(path + ".tmp", path)
    return sorted(files(command, environment))
