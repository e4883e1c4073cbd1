# Debian's pybuild (distutils plugin) needs a setup.py; everything is in setup.cfg.
from setuptools import setup

setup()
