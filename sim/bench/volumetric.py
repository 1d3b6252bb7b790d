"""Benchmarks of the volumetric systems (FEM pads, MLS-MPM): seconds per substep forward
and forward+backward, peak memory, particle-count scaling. JSON out.

    python -m sim.bench.volumetric --json artifacts/bench-volumetric.json [--quick]
    python -m sim.bench.volumetric --case mpm_fluid_100k      # one case, JSON on stdout

Each case runs in its own process so its peak RSS is its own; the first (compiling) run
is excluded from the timings (warm caches). Each timing is the median of ``--repeat`` runs,
with the fastest beside it (``*_best_*``): on a shared machine single runs of one build
differ by up to 2x. Forward+backward includes the forward run and
the backward's recomputation (step segments, then chunks of substeps: sim.mpm.chunks). The
pad cases run the coupled World system (dome pads of about 2,000 nodes, spatial-hash
contact with the particles).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from sim.runtime import BACKENDS, PRECISIONS


REPEAT = 3  # runs per timing (--repeat)


def _timed(out: dict, key: str, fn, per: int) -> float:
    """Time ``fn`` REPEAT times; ``out[key + '_s_per_substep']`` gets the median over
    ``per`` substeps, ``out[key + '_best_s_per_substep']`` the fastest run's. Returns the median."""
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) / per)
    out[key + "_s_per_substep"], out[key + "_best_s_per_substep"] = float(np.median(times)), min(times)
    return out[key + "_s_per_substep"]


def _mpm_case(n_particles: int, kind: str, tool: str, steps: int, substeps: int, dt: float, backward: bool, note: str):
    import torch

    from sim.fem.spec import ShapeSpec
    from sim.mpm.sampling import sample_box
    from sim.mpm.solver import MpmSystem, MpmTrajectory
    from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial

    grid = MpmGrid((0, 0, 0), 0.1, 64)
    side = (n_particles * (grid.dx / 2) ** 3) ** (1 / 3)  # a cube at 8 particles per cell
    pts, vol = sample_box((0.05, 0.05, 0.01 + side / 2), (side / 2,) * 3, grid.dx / 2)
    mat = MpmMaterial(kind, youngs_modulus=5e4, yield_stress=2e3, bulk_modulus=2e4, viscosity=1e-3)
    if tool == "sphere":
        shapes = [ShapeSpec("sphere", (side / 3, 0, 0))]
        top = 0.01 + side + side / 3
        path = np.array([[0.05, 0.05, top - 0.002 * t / steps] for t in range(steps + 1)])[:, None, :]
    elif tool == "fingers":  # two kinematic fingers closing on the object
        shapes = [ShapeSpec("box", (0.004, side, side)), ShapeSpec("box", (0.004, side, side))]
        gap = side / 2 + 0.004
        close = np.linspace(0, 0.002, steps + 1)
        path = np.stack(
            [np.stack([0.05 - gap + close, np.full_like(close, 0.05), np.full_like(close, 0.01 + side / 2)], -1),
             np.stack([0.05 + gap - close, np.full_like(close, 0.05), np.full_like(close, 0.01 + side / 2)], -1)], 1)
    else:
        shapes, path = [], np.zeros((steps + 1, 0, 3))
    sim = MpmSystem([MpmBodySpec("object", pts, vol, mat)], grid, shapes, dt=dt, substeps=substeps, requires_grad=backward,
                    tape_steps=steps)
    traj = MpmTrajectory(torch.from_numpy(path))
    per = steps * substeps
    if not backward:
        sim.run(1, MpmTrajectory(traj.shape_pos[:2]))  # compile
        out = dict(particles=sim.n, grid=64, dt=dt, note=note)
        _timed(out, "forward", lambda: sim.run(steps, traj), per)
        return out
    def fb():  # the initial velocity always needs a gradient, so every case has a tape
        x, v = sim.rollout(steps, traj, velocity=torch.from_numpy(sim.v0).requires_grad_(True))
        (x.sum() + v.sum()).backward()
    with torch.no_grad():
        sim.run(1, MpmTrajectory(traj.shape_pos[:2]))
    fb()  # compile
    out = dict(particles=sim.n, grid=64, dt=dt, taped=sim.tape_steps >= steps, note=note)
    _timed(out, "forward", lambda: sim.run(steps, traj), per)
    both = _timed(out, "forward_backward", fb, per)
    out["wall_s_per_simulated_s"] = both / dt
    return out


def _fem_dome(steps: int, substeps: int, backward: bool = True):
    import torch

    from sim.fem.mesh import dome_pad
    from sim.fem.solver import FemSystem, Trajectory, stable_dt
    from sim.fem.spec import ContactParams, FemBodySpec, ShapeSpec

    mesh = dome_pad()
    dt = 5e-5
    base = stable_dt([FemBodySpec("pad", mesh)], ContactParams())
    scale = float(np.ceil((dt / base) ** 2 * 1.05))
    body = FemBodySpec("pad", mesh, mass_scale=scale)
    sim = FemSystem([body], [ShapeSpec("sphere", (0.006, 0, 0))], ContactParams(), dt=dt, substeps=substeps)
    top = mesh.nodes[:, 2].max()
    sphere = torch.zeros(steps + 1, 1, 3, dtype=torch.float64)
    sphere[:, 0, 2] = top + 0.006 - torch.linspace(0, 5e-4, steps + 1, dtype=torch.float64)
    traj = Trajectory(torch.zeros(steps + 1, 1, 3, dtype=torch.float64), sphere.requires_grad_(True))
    per = steps * substeps
    def fb():
        xs, fcs = sim.rollout(traj)
        fcs[-1].sum().backward()
    fb()  # compile
    out = dict(nodes=sim.n_nodes, tets=sim.n_tets, dt=dt, mass_scale=scale, note="dome pad pressing a kinematic sphere")
    _timed(out, "forward", lambda: sim.forward(traj), per)
    _timed(out, "forward_backward", fb, per)
    return out


def _coupled_case(n_particles: int, kind: str, pads: int, steps: int, backward: bool = True):
    """Dome pads (about 2,000 nodes each) on a tool pressing (one pad, from above) or
    grasping (two pads, from the sides) an MPM object on a 64^3 grid, in a World."""
    from sim.fem.mesh import dome_pad
    from sim.fem.solver import stable_dt
    from sim.fem.spec import FemBodySpec
    from sim.mpm.sampling import sample_box
    from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial
    from sim.runtime import current_runtime
    from sim.spec import ColliderSpec, Settings, ToolSpec, WorldSpec
    from sim.fem.spec import DEFAULT_CONTACT
    from sim.volumetric import VolumetricRun
    from sim.world import World

    grid = MpmGrid((0, 0, 0), 0.1, 64)
    side = (n_particles * (grid.dx / 2) ** 3) ** (1 / 3)
    centre = np.array([0.05, 0.05, 0.01 + side / 2])
    pts, vol = sample_box(centre, (side / 2,) * 3, grid.dx / 2)
    mat = MpmMaterial(kind, youngs_modulus=5e4, yield_stress=2e3)
    body = MpmBodySpec("object", pts, vol, mat, grid=grid)
    mesh = dome_pad()
    top = float(mesh.nodes[:, 2].max())
    sub = 5e-5  # DiffTactile's substep; a step of 49 of them, as there
    scale = float(np.ceil((sub / stable_dt([FemBodySpec("pad", mesh)], DEFAULT_CONTACT)) ** 2 * 1.05))
    dt = 49 * sub
    s = np.sqrt(0.5)
    if pads == 1:  # a plate pressing down: pad flipped, gel on the plate's underside
        plate = (0.015, 0.015, 0.002)
        colliders = (ColliderSpec("tool.plate", "box", plate),)
        fem = (FemBodySpec("pad", mesh, mass_scale=scale, mount="tool.plate", position=(0, 0, top - plate[2]),
                           rotation=(0.0, 1.0, 0.0, 0.0)),)
        tool = ToolSpec("tool", "rigid", ("tool.plate",), position=(0.05, 0.05, 0.01 + side + plate[2] + 2e-4))
        move, close = np.array([0, 0, -0.002]), 0.0
    else:  # two fingers grasping from the sides
        finger = (0.002, 0.01, 0.01)
        colliders = (ColliderSpec("tool.left", "box", finger), ColliderSpec("tool.right", "box", finger))
        fem = tuple(FemBodySpec(f"pad_{n}", mesh, mass_scale=scale, mount=f"tool.{n}", position=(-sd * (finger[0] - top), 0, 0),
                                rotation=(s, 0.0, -sd * s, 0.0)) for n, sd in (("left", 1.0), ("right", -1.0)))
        tool = ToolSpec("tool", "parallel_jaw", ("tool.left", "tool.right"), position=tuple(centre),
                        opening=side + 4e-4, finger_half=finger)
        move, close = np.zeros(3), 0.002
    actions = np.zeros((steps, 1, 8))
    frac = np.linspace(0, 1, steps + 1)[1:, None]
    actions[:, 0, :3] = np.asarray(tool.position) + frac * move
    actions[:, 0, 3] = 1.0
    actions[:, 0, 7] = tool.opening - frac[:, 0] * close
    rt = current_runtime().config  # run_case's backend and precision (a World re-initialises Taichi to its spec's)
    settings = Settings(dt=dt, steps=steps, backend=rt.backend, precision=rt.precision)
    spec = WorldSpec(settings, colliders=colliders, tools=(tool,), actions=actions, fem_bodies=fem, mpm_bodies=(body,))
    world = World(spec)
    system = world.volumetric
    per = steps * system.substeps

    def forward():
        world.reset()
        for _ in range(steps):
            world.step()

    def fb():
        run = VolumetricRun(world)
        run.backward({"mpm_x": np.ones_like(run.final["mpm_x"])})

    forward()  # compile
    out = dict(particles=system.mpm.n, pad_nodes=int(system.fem.n_nodes), pads=pads, grid=64, dt=system.dt,
               substeps_per_step=system.substeps, substep_state_rows=system.slots, contact_pairs_last_substep=system.pairs())
    _timed(out, "forward", forward, per)
    if backward:
        fb()  # compile
        out["wall_s_per_simulated_s"] = _timed(out, "forward_backward", fb, per) / system.dt
    return out


CASES = {
    "pad_press_elastic_20k": lambda q: _coupled_case(20_000, "elastic", 1, 2 if q else 4),
    "two_pad_grasp_plastic_7k": lambda q: _coupled_case(7_300, "plastic", 2, 2 if q else 4),
    "pad_press_scaling_50k": lambda q: _coupled_case(50_000, "elastic", 1, 2, backward=False),
    "pad_press_backward_50k": lambda q: _coupled_case(50_000, "elastic", 1, 2),
    "pad_press_scaling_100k": lambda q: _coupled_case(100_000, "elastic", 1, 2, backward=False),
    "fem_dome_press": lambda q: _fem_dome(4 if q else 10, 49),
    "mpm_water_19683": lambda q: _mpm_case(19_683, "fluid", "none", 2 if q else 4, 10, 2e-4, True, "FluidLab-sized water block"),
    "mpm_fluid_100k": lambda q: _mpm_case(100_000, "fluid", "none", 2 if q else 4, 10, 1e-4, False, "fluid, forward only"),
    "mpm_scaling_20k": lambda q: _mpm_case(20_000, "elastic", "sphere", 2, 10, 5e-5, False, "scaling, forward"),
    "mpm_scaling_50k": lambda q: _mpm_case(50_000, "elastic", "sphere", 2, 10, 5e-5, False, "scaling, forward"),
    "mpm_scaling_100k": lambda q: _mpm_case(100_000, "elastic", "sphere", 2, 10, 5e-5, False, "scaling, forward"),
}


def run_case(name: str, quick: bool = False, backend: str = "cpu", precision: str = "f64", repeat: int = REPEAT) -> dict:
    from sim.runtime import RuntimeConfig, ensure_runtime

    global REPEAT
    REPEAT = repeat
    rt = ensure_runtime(RuntimeConfig(backend=backend, precision=precision))
    result = CASES[name](quick)
    result.update(case=name, arch=rt.arch, precision=precision, repeat=repeat,
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def run_all(quick: bool = False, cases=None, backend: str = "cpu", precision: str = "f64", repeat: int = REPEAT) -> list[dict]:
    """Every case in its own process (own peak memory); failures are recorded, not hidden."""
    out = []
    for name in cases or CASES:
        done = subprocess.run([sys.executable, "-m", "sim.bench.volumetric", "--case", name, "--backend", backend,
                               "--precision", precision, "--repeat", str(repeat)]
                              + (["--quick"] if quick else []),
                              capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        out.append(json.loads(lines[-1]) if done.returncode == 0 and lines else
                   dict(case=name, error=(done.stderr or done.stdout)[-2000:]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--case", choices=sorted(CASES), help="run one case and print its JSON")
    ap.add_argument("--quick", action="store_true", help="fewer steps")
    ap.add_argument("--backend", default="cpu", choices=BACKENDS,
                    help="where the kernels run (the JSON's arch says where they did)")
    ap.add_argument("--precision", default="f64", choices=PRECISIONS,
                    help="floating point of every kernel (the research codes compared with run in f32)")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="runs per timing (median and best reported)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    if args.case:
        print(json.dumps(run_case(args.case, args.quick, args.backend, args.precision, args.repeat)))
        return 0
    results = run_all(args.quick, backend=args.backend, precision=args.precision, repeat=args.repeat)
    text = json.dumps(results, indent=2)
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(text)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
