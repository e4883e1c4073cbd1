"""snf-ganeti: the host-side agent of a Ganeti-based IaaS cloud."""

__version__ = "0.1.0"
