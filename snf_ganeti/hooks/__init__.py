"""hooks: Ganeti post-hooks that publish NIC configuration and clean up host state.

Not built yet (see the hooks and packaging issue).
"""
