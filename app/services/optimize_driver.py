"""Whether a scene can be optimized, and by which sim.optim optimizer (cheap checks the
studio makes before it starts a worker process: no world is built)."""

from __future__ import annotations


def optimizer_for(method: str) -> str:
    """The sim.optim optimizer behind a scene's ``task.optimizer.method`` (the scene model
    validates the same names); ValueError if none."""
    from sim.optim.optimizers import OPTIMIZERS

    if method not in OPTIMIZERS:
        raise ValueError(f"optimizer {method!r} is not implemented; pick one of {sorted(OPTIMIZERS)}")
    return method


def why_not_optimizable(scene) -> str:
    """'' when the scene's task and optimizer exist, else what is missing (cheap: no world built)."""
    from sim.tasks.registry import task_definition

    try:
        task_definition(scene.task.kind)
        optimizer_for(scene.task.optimizer.method)
    except (KeyError, ValueError) as exc:
        return str(exc.args[0]) if exc.args else str(exc)
    return ""
