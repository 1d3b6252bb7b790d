"""Maps a package's compiled extension modules before it is imported on a background thread.

The import system loads an extension with the interpreter lock held, so while the dynamic
loader maps and relocates Taichi's core (tens of megabytes, about 150 ms) every other thread,
the studio's GUI thread included, waits. ctypes releases the lock around the same dlopen;
loaded first that way, with the flags the import system uses, the import finds the library
already mapped and holds the lock only for the module's own set-up (measured: the longest
wait of a 1 ms timer on another thread went from 152 ms to 22 ms).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import sys
from pathlib import Path


def preload_extensions(package: str) -> int:
    """Map every extension module of ``package`` without importing it; returns how many.
    Nothing happens to a package that is not installed or already imported."""
    if package in sys.modules:
        return 0
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return 0
    # the tagged suffixes only (".cpython-311-x86_64-linux-gnu.so", ".abi3.so"): a bare ".so"
    # also names plain libraries the package may never load (Taichi's C API)
    suffixes = tuple(s for s in importlib.machinery.EXTENSION_SUFFIXES if s.count(".") > 1)
    libraries = sorted({p for folder in spec.submodule_search_locations for p in Path(folder).rglob("*.so")
                        if p.name.endswith(suffixes)})
    loaded = 0
    for library in libraries:
        try:
            ctypes.CDLL(str(library), mode=sys.getdlopenflags())
        except OSError:  # the import reports it, with its own message
            continue
        loaded += 1
    return loaded
