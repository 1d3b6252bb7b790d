"""Thin-shell benchmarks (``deft bench sim``): speed, memory, horizon, start-up, integrator.

Every case returns a JSON-ready dict. Times are wall seconds on this machine; memory is the
process's resident set (Taichi's arrays live outside Python's allocator).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from sim import geometry
from sim.spec import ColliderSpec, ContactSettings, Settings, ShellMaterial, ShellSpec, ToolSpec, WorldSpec

PAPER = ShellMaterial(density=800.0, thickness=1e-4, youngs_modulus=4e9, poisson_ratio=0.3,
                      bending_stiffness=1e-3, damping=1.0, friction=0.5)
CLOTH = ShellMaterial(density=300.0, thickness=5e-4, youngs_modulus=1e6, poisson_ratio=0.3,
                      bending_stiffness=1e-5, damping=1.0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


CLOSE_S, LIFT_SPEED, LIFT_HEIGHT = 0.04, 0.3, 0.05  # s to close the pinch, then m/s upwards up to m, whatever the step count


def pinched_sheet(n: int, steps: int, dt: float = 5e-3, material: ShellMaterial = CLOTH, size: float = 0.1,
                  backend: str = "cpu") -> WorldSpec:
    """An n x n sheet on a table; the gripper, turned so its fingers close along z, pinches
    the middle of one edge from above and below in CLOSE_S, then lifts at LIFT_SPEED by LIFT_HEIGHT."""
    v, t = geometry.sheet(n, n, size, size)
    v[:, 2] += material.thickness / 2
    finger = (0.004, 0.01, 0.01)
    start = (size / 2 - 0.005, 0.0, material.thickness / 2)
    turn = (np.sqrt(0.5), 0.0, -np.sqrt(0.5), 0.0)  # local x (the closing axis) along world z
    table = ColliderSpec("table", "box", (size, size, 0.01), position=(0, 0, -0.01), friction=0.4, contact_stiffness=2e3)
    fingers = tuple(ColliderSpec(f"gripper.{s}", "box", finger, friction=1.0, contact_stiffness=1e4) for s in ("left", "right"))
    tool = ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), start, turn,
                    opening=3 * material.thickness, finger_half=finger)
    base = WorldSpec(settings=Settings(dt=dt, steps=steps, backend=backend), shells=(ShellSpec("sheet", v, t, material),),
                     colliders=(table, *fingers), tools=(tool,))
    acts = base.default_actions()
    t = np.arange(1, steps + 1) * dt
    close = np.clip(t / CLOSE_S, 0, 1)
    acts[:, 0, 7] = material.thickness * (3.0 * (1 - close) + 0.8 * close)
    acts[:, 0, 2] = start[2] + np.clip(LIFT_SPEED * (t - CLOSE_S), 0, LIFT_HEIGHT)
    return dataclasses.replace(base, actions=acts)


def _run(spec: WorldSpec, backward: bool, segment: int | None = None) -> dict:
    from sim.rollout import rollout
    from sim.world import World

    rss0 = rss_bytes()
    t0 = time.perf_counter()
    world = World(spec)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = rollout(world, segment=segment)
    fwd = time.perf_counter() - t0
    out = {"arch": world.runtime.arch, "vertices": world.shells.nv, "steps": spec.settings.steps, "dt": spec.settings.dt, "build_s": build,
           "forward_s_per_step": fwd / spec.settings.steps,
           "forward_wall_per_simulated_s": fwd / (spec.settings.steps * spec.settings.dt),
           "newton_per_step": float(np.mean([s["shells"]["newton"] for s in run.stats])),
           "cg_per_step": float(np.mean([s["shells"]["cg"] for s in run.stats])),
           "factorizations_per_step": float(np.mean([s["shells"]["factorizations"] for s in run.stats])),
           "contacts_at_end": world.contact_count()}
    if backward:
        t0 = time.perf_counter()
        run.backward(np.ones_like(run.observed))
        bwd = time.perf_counter() - t0
        out["forward_backward_s_per_step"] = (fwd + bwd) / spec.settings.steps
        out["forward_backward_wall_per_simulated_s"] = (fwd + bwd) / (spec.settings.steps * spec.settings.dt)
        out["checkpoint_bytes"] = run.memory_bytes()
    out["rss_growth_bytes"] = rss_bytes() - rss0
    return out


def _warm_up(backend: str) -> None:
    """Load (or compile) every kernel of a pinch-lift rollout and its backward on a tiny sheet,
    so the first case measured does not carry the process's one-time costs (the start-up
    case measures those)."""
    _run(pinched_sheet(5, 2, backend=backend), backward=True)


def sheet_sizes(sizes=(17, 33, 65, 129), steps: int = 20, backend: str = "cpu") -> list[dict]:
    _warm_up(backend)
    return [{"n": n, **_run(pinched_sheet(n, steps, backend=backend), backward=True)} for n in sizes]


def horizons(lengths=(100, 1000, 5000), n: int = 5, backend: str = "cpu") -> list[dict]:
    """Backward memory against the horizon, with checkpoints every ~sqrt(steps) steps (the
    memory-bounded mode rollouts switch to when every state would not fit their budget)."""
    _warm_up(backend)
    out = []
    for steps in lengths:
        spec = pinched_sheet(n, steps, dt=2e-3, backend=backend)
        out.append({"horizon": steps, "segment": math.isqrt(steps), **_run(spec, backward=True, segment=math.isqrt(steps))})
    return out


def integrator_choice(n: int = 17, steps: int = 5, backend: str = "cpu") -> dict:
    """Paper (E = 4 GPa, 0.1 mm): the implicit step at dt = 5 ms against the cheapest
    possible explicit scheme, one force evaluation per substep at the membrane's stable
    time step (CFL: edge / wave speed)."""
    from sim.world import World

    from sim.errors import SimulationError

    spec = pinched_sheet(n, steps, material=PAPER, backend=backend)
    try:
        implicit = _run(spec, backward=False)
    except SimulationError as exc:  # recorded, not hidden: the comparison needs the number
        implicit = {"error": str(exc), "forward_wall_per_simulated_s": None, "newton_per_step": None, "cg_per_step": None}
    world = World(spec)
    world.colliders.set_poses(world.poses[0], world.poses[1])
    shells = world.shells
    shells.forces()
    t0 = time.perf_counter()
    reps = 200
    for _ in range(reps):
        shells.forces()
    world.shells.f.to_numpy()  # wait for the kernels
    force_s = (time.perf_counter() - t0) / reps
    edge = 0.1 / (n - 1)
    wave = np.sqrt(PAPER.youngs_modulus / (PAPER.density * (1 - PAPER.poisson_ratio**2)))
    dt_explicit = edge / wave
    return {
        "material": dataclasses.asdict(PAPER), "vertices": n * n,
        "implicit_bdf2_dt": spec.settings.dt,
        "implicit_wall_per_simulated_s": implicit["forward_wall_per_simulated_s"],
        "implicit_newton_per_step": implicit["newton_per_step"], "implicit_cg_per_step": implicit["cg_per_step"],
        "explicit_stable_dt": dt_explicit, "explicit_force_eval_s": force_s,
        "explicit_lower_bound_wall_per_simulated_s": force_s / dt_explicit,
    }


def first_step(backend: str = "cpu") -> None:
    from sim.world import World

    World(pinched_sheet(31, 2, backend=backend)).step()


def start_up(backend: str = "cpu") -> dict:
    """Cold and warm start: wall seconds of two fresh processes that import, initialise
    Taichi, build the 31 x 31 lifting world and take its first step. The first starts
    with an empty kernel cache, the second finds what the first compiled."""
    import os
    import subprocess
    import sys
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DEFT_CACHE_DIR": cache}
        for key in ("cold_first_step_s", "warm_first_step_s"):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"from sim.bench.shells import first_step; first_step({backend!r})"],
                           env=env, capture_output=True, check=True)
            out[key] = time.perf_counter() - t0
    return out


def thinshelllab_floor(steps: int = 40, backend: str = "cpu") -> dict:
    """ThinShellLab's lifting scene kind: a 31 x 31 sheet, dt = 5 ms, pinched and lifted,
    forward + backward, against its ~480 s wall per simulated second on this CPU."""
    _warm_up(backend)
    result = _run(pinched_sheet(31, steps, dt=5e-3, backend=backend), backward=True)
    result["thinshelllab_wall_per_simulated_s"] = 480.0
    result["speedup"] = 480.0 / result["forward_backward_wall_per_simulated_s"]
    return result
