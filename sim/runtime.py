"""The one place that initialises Taichi.

Taichi keeps global state and is not thread-safe, so a process has one runtime: the thread
that calls ``ensure_runtime`` first becomes the simulation thread and every later Taichi
call must come from it (the studio runs a single-worker executor for that; the CLI and the
tests use their main thread). Re-initialising with another configuration resets Taichi and
invalidates every field allocated before, which ``generation`` lets worlds detect.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sim import SMALL_CPU, kernel_build

BACKENDS = ("cpu", "cuda", "vulkan", "auto")
PRECISIONS = ("f32", "f64")


def default_cache_dir() -> Path:
    root = os.environ.get("DEFT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "deft"
    )
    return Path(root) / "taichi"


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str = "cpu"
    precision: str = "f64"
    cache_dir: Path | None = None  # None: default_cache_dir()
    debug: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class Runtime:
    config: RuntimeConfig
    arch: str  # what Taichi actually runs on: "x64", "arm64", "cuda", "vulkan"
    generation: int
    thread_id: int
    message: str  # one line for the user: where kernels run and why

    @property
    def real(self):
        import taichi as ti

        return ti.f64 if self.config.precision == "f64" else ti.f32

    @property
    def np_real(self):
        import numpy as np

        return np.float64 if self.config.precision == "f64" else np.float32

    def check_thread(self) -> None:
        if threading.get_ident() != self.thread_id:
            raise RuntimeError(
                "Taichi called from a thread other than the simulation thread; "
                "route the call through the simulation executor"
            )


_lock = threading.Lock()
_current: Runtime | None = None
_program = 0  # bumped whenever Taichi is reset: the arrays made before belong to a dead program


def _guard_stale_ndarrays() -> None:
    """Make a Taichi ndarray free itself only through the program that made it.

    ``ti.reset`` frees every array of the old program, but their Python objects live on and,
    when collected later, hand their dangling pointers to the *new* program's
    ``delete_ndarray``, which frees whatever live array now sits at that address (then a
    launch with it fails "argument not found", seen in about 1 of 15 runs of the shell
    physics tests, which switch precision). Idempotent."""
    from taichi.lang._ndarray import Ndarray, ScalarNdarray
    from taichi.lang.matrix import MatrixNdarray, VectorNdarray

    if getattr(Ndarray, "_deft_guarded", False):
        return
    init = Ndarray.__init__

    def __init__(self, *args, **kwargs):  # every kind of ndarray calls it before allocating
        init(self, *args, **kwargs)
        self._deft_program = _program

    Ndarray.__init__, Ndarray._deft_guarded = __init__, True
    for cls in (ScalarNdarray, VectorNdarray, MatrixNdarray):
        delete = cls.__dict__.get("__del__")  # (Taichi 1.7.4 frees only scalar ndarrays itself)
        if delete is not None:
            cls.__del__ = _if_current(delete)


def _if_current(delete):
    def __del__(self):
        if getattr(self, "_deft_program", None) == _program:
            delete(self)

    return __del__


def current_runtime() -> Runtime | None:
    return _current


def ensure_runtime(config: RuntimeConfig | None = None) -> Runtime:
    """Initialise Taichi once per configuration; return the live runtime.

    With no config, reuse the live runtime whatever its configuration, or start the default.
    """
    global _current, _program
    with _lock:
        if _current is not None and (config is None or config == _current.config):
            return _current
        config = config or RuntimeConfig()
        import taichi as ti

        _guard_stale_ndarrays()
        if _current is not None:
            _program += 1
            ti.reset()
        arch, message = _init_taichi(ti, config)
        _current = Runtime(
            config=config,
            arch=arch,
            generation=(_current.generation + 1) if _current else 1,
            thread_id=threading.get_ident(),
            message=message,
        )
        return _current


def _init_taichi(ti, config: RuntimeConfig) -> tuple[str, str]:
    kernel_build.install()
    cache = config.cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    common = dict(
        default_fp=ti.f64 if config.precision == "f64" else ti.f32,
        default_ip=ti.i32,
        offline_cache=True,
        offline_cache_file_path=str(cache),
        debug=config.debug,
        log_level=ti.WARN,
        random_seed=0,
    )
    # Never ti.gpu: without a display or Vulkan it segfaults. Ask for each accelerator by
    # name; Taichi falls back to the CPU by itself when one is missing, and we report that.
    wanted = {"cpu": [], "cuda": ["cuda"], "vulkan": ["vulkan"], "auto": ["cuda", "vulkan"]}[
        config.backend
    ]
    for name in wanted:
        ti.init(arch=getattr(ti, name), **common)
        got = _arch_name(ti)
        if got == name:
            return got, f"simulating on {got} ({config.precision})"
        ti.reset()
    ti.init(arch=ti.cpu, cpu_max_num_threads=os.cpu_count() or 1, **common)
    got = _arch_name(ti)
    if wanted:
        return got, f"no {'/'.join(wanted)} device here; simulating on the CPU ({got}, {config.precision})"
    return got, f"simulating on the CPU ({got}, {config.precision})"


def _arch_name(ti) -> str:
    return ti.lang.impl.current_cfg().arch.name


def serial_scatter(runtime) -> bool:
    """Whether kernels that add into shared nodes or grid cells run as one serial loop: on a
    CPU with few threads Taichi's float64 atomic adds (compare-and-swap loops) cost more than
    the threads gain; serial, the adds are plain (MPM P2G of 20k particles on the 2-core
    machine: 5.2 ms with two threads, 1.2 ms serial). Only kernels light on arithmetic per
    add gain (P2G, the scatter half of G2P's adjoint, FEM forces, parameter-gradient sums,
    the shells' element forces and Hessian blocks). Serial sums are also deterministic.
    GPUs keep their atomics."""
    return runtime.arch in ("x64", "arm64") and SMALL_CPU


# Loops over at least this many items keep Taichi's threads where serial_loops would drop them.
PARALLEL_MIN_ITEMS = 50_000


def serial_loops(runtime, items: int = 0) -> bool:
    """Whether a system's per-substep loops over ``items`` elements run serially: on a CPU
    with few cores (as ``serial_scatter``) Taichi's thread pool costs more than it gains
    below tens of thousands of elements. Each threaded loop waits for its sleeping workers
    (2-core machine: a loop setting 4,000 floats takes 103 us threaded, 21 us serial) and
    a second thread only helps loops of several milliseconds: the two-pad grasp (7k
    particles, 4k pad nodes) ran 6.9 ms per substep forward threaded, 3.5 ms serial; the
    31 x 31 pinch-lift 17 against 13 s per simulated second. A 100k particle MPM forward
    kept its threads' gain (12.9 against 15.4 ms per substep), hence ``PARALLEL_MIN_ITEMS``."""
    return serial_scatter(runtime) and items < PARALLEL_MIN_ITEMS
