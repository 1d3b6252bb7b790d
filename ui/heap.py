"""The studio's garbage-collection policy.

A full collection walks every live object with the interpreter lock held: 80-170 ms once Qt,
VTK and Taichi are loaded. Background imports (Taichi on the simulation thread, pyqtgraph on
the preload thread) allocate enough to trigger one, and the event loop froze that long, even
while an optimization was starting. ``deft gui`` therefore starts with automatic collection
off (it also saves the start three collections, about 0.15 s); once the window is up and the
warm-up imports are done, ``settle`` moves every object alive into the permanent generation,
which later collections skip, and turns collection back on. Reference cycles that became
garbage during the start are frozen with the rest and never freed: a one-off cost, paid
to keep a full collection off the GUI thread.
"""

from __future__ import annotations

import gc


def settle() -> bool:
    """Freeze what is alive and collect automatically again, if the start turned collection
    off; returns whether it did (a process that never turned it off, a test's, is left as is)."""
    if gc.isenabled():
        return False
    gc.freeze()
    gc.enable()
    return True
