"""Emulated serial devices on pseudo-terminal pairs, for tests and for rehearsing without hardware.

Each emulator owns the master side of a pty pair and exposes a stable path (a symlink,
like /dev/serial/by-id/...) that clients open. ``unplug()`` closes the pair and removes
the link (the client sees an I/O error); ``replug()`` makes a new pair behind the same path.
"""
