"""Simulates a scene document into a run of frames (called on the simulation thread)."""

from __future__ import annotations

from pathlib import Path

from app.services.frames import Run


class SimulationUnavailable(RuntimeError):
    """This build cannot simulate the scene; the message says what is missing."""


def simulate_scene(scene, scene_path: Path | None) -> Run:
    try:
        from app.compile import compile_scene  # noqa: F401  (the shell engineer's compiler)
        from sim.world import World  # noqa: F401
    except ImportError as exc:
        raise SimulationUnavailable(f"the simulator is not in this build yet ({exc.name} is missing)") from None
    raise SimulationUnavailable("app.compile and sim.world exist but the studio does not drive them yet")


def runtime_message() -> str:
    """Where simulation kernels run, for the About box and status messages."""
    from sim.runtime import current_runtime

    runtime = current_runtime()
    return runtime.message if runtime else "Taichi not started yet (it starts on the first simulation)"


def warm_up(backend: str, precision: str) -> str:
    """Run once on the simulation thread after the window shows: load the simulator and
    optimizer modules and start Taichi, so the first Simulate or Optimize does not pay for
    it (and does not hold the import lock while the GUI thread imports). Returns where
    kernels will run."""
    import app.services.optimize  # noqa: F401  (torch, optimizers)
    import app.services.optimize_tasks  # noqa: F401  (task registry)
    from sim.runtime import RuntimeConfig, ensure_runtime

    return ensure_runtime(RuntimeConfig(backend=backend, precision=precision)).message
