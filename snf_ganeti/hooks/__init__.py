"""hooks: Ganeti's instance post hooks, as ``snf-ganeti hook``.

``env`` parses the GANETI_* environment into a typed HookEnv; ``plan`` decides, as plain data,
what this node does for it (a ganeti-net-status message on the master; the instance's taps to
clean up on the node that held it); ``run`` applies that plan within a bounded time.
"""
