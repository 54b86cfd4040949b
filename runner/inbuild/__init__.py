"""Everything that runs inside the measured build: staged as a folder of its own and put on the
build's PYTHONPATH (see ``runner.measure.staging``).

Every module below this package is stdlib-only and runs on CPython 3.8+: the build's own
interpreter imports it (the phase API, the probe: its entry point ``site/sitecustomize.py`` and
its modules in ``probe/``, the leak driver), and so does the harness that is PID 1 of a
container or a systemd scope (``harness``, ``cgroups``), and the runner's watchdog that cleans up
when the runner dies (``reaper``).
"""
