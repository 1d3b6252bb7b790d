"""The simulation thread: one worker that owns every Taichi call of the studio.

Taichi is not thread-safe and binds to the thread that initialised it (sim/runtime.py), so
the studio never calls it from the GUI thread. Jobs are plain callables queued on a
single-worker executor; results come back as futures. Callers that need progress pass a
callback: it runs on the simulation thread, and the UI turns it into a queued Qt signal.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a job when its cancel token was set; the job stops between steps."""


class CancelToken:
    """Set from any thread; checked by the job between steps or iterations."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class SimulationThread:
    """A single worker thread; every submitted job runs on it, in submission order."""

    def __init__(self, name: str = "deft-sim") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ident: int | None = None
        self._pool.submit(self._remember_ident).result()

    def _remember_ident(self) -> None:
        self._ident = threading.get_ident()

    @property
    def ident(self) -> int | None:
        return self._ident

    def on_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def submit(self, fn: Callable[..., T], *args, **kwargs) -> Future:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


_shared: SimulationThread | None = None
_shared_lock = threading.Lock()


def shared_simulation_thread() -> SimulationThread:
    """The process's simulation thread, started on first use and kept for the process's
    life: Taichi stays bound to the thread that initialised it, so every window (and every
    window opened after another was closed) must use this same one."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SimulationThread()
        return _shared
