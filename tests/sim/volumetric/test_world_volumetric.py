"""Volumetric bodies inside sim.World: two tactile pads grasp an MPM object through the
spatial-hash contact (no particle gets through a pad), and the adjoint of the coupled run
matches float64 central differences for materials, contact and the gripper's motion."""

import dataclasses

import numpy as np
import pytest

from sim.fem.mesh import flat_pad
from sim.fem.spec import FemBodySpec, FemMaterial
from sim.mpm.sampling import sample_box
from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial
from sim.spec import ColliderSpec, Settings, ToolSpec, WorldSpec
from sim.volumetric import VolumetricRun, check_volumetric_gradients

FINGER = (0.004, 0.006, 0.008)  # finger box half-extents
THICK = 0.003  # pad thickness


def _pad(name: str, side: float) -> FemBodySpec:
    """A flat pad glued into the finger at +x (side 1) or -x (side -1), gel facing the other."""
    mesh = flat_pad((0.01, 0.01, THICK), (5, 5, 2))
    s = np.sqrt(0.5)
    rotation = (s, 0.0, -side * s, 0.0)  # about y: pad +z -> -side x
    return FemBodySpec(name, mesh, FemMaterial(2e5, 0.4, 1100.0, 50.0), position=(-side * (FINGER[0] - THICK), 0, 0),
                       rotation=rotation, mass_scale=4.0, mount=f"gripper.{'left' if side > 0 else 'right'}")


def grasp_spec(steps: int, open0: float, open1: float, pads=("left", "right"), kind="elastic", dt=1e-4) -> WorldSpec:
    grid = MpmGrid((-0.01613, -0.01587, -0.01609), 0.032, 16)  # collider faces off grid nodes (FD sees node crossings)
    pts, vol = sample_box((0, 0, 0), (0.004, 0.004, 0.004), grid.dx / 2)
    # a small drift breaks the symmetry that would leave grid nodes exactly at zero normal
    # velocity on the fingers' side faces (a kink of the projection that FD would see)
    body = MpmBodySpec("object", pts, vol, MpmMaterial(kind, density=1000.0, youngs_modulus=3e4, yield_stress=500.0),
                       velocity=(0.0, 0.013, -0.021), grid=grid)
    fingers = (ColliderSpec("gripper.left", "box", FINGER), ColliderSpec("gripper.right", "box", FINGER))
    tool = ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), opening=open0, finger_half=FINGER)
    actions = np.zeros((steps, 1, 8))
    actions[:, 0, 3] = 1.0
    actions[:, 0, 7] = np.linspace(open0, open1, steps + 1)[1:]
    fem = tuple(_pad(f"pad_{p}", 1.0 if p == "left" else -1.0) for p in pads)
    return WorldSpec(Settings(dt=dt, steps=steps, gravity=(0, 0, 0)), colliders=fingers, tools=(tool,),
                     actions=actions, fem_bodies=fem, mpm_bodies=(body,))


def press_spec(steps: int, x0: float, x1: float) -> WorldSpec:
    """One pad on a rigid pusher moving along -x into the object (no bare collider touches it)."""
    spec = grasp_spec(steps, 0.03, 0.03, pads=("left",))
    pusher = ColliderSpec("pusher", "box", FINGER)
    tool = ToolSpec("pusher", "rigid", ("pusher",), position=(x0, 0.0, 0.0))
    actions = np.zeros((steps, 1, 8))
    actions[:, 0, 0] = np.linspace(x0, x1, steps + 1)[1:]
    actions[:, 0, 3] = 1.0
    pad = dataclasses.replace(spec.fem_bodies[0], mount="pusher")
    return WorldSpec(spec.settings, colliders=(pusher,), tools=(tool,), actions=actions, fem_bodies=(pad,),
                     mpm_bodies=spec.mpm_bodies)


@pytest.mark.slow  # ~20 s warm; compiling the coupled kernels in a fresh process takes minutes under load
def test_two_pad_grasp_keeps_every_particle_out_of_the_pads():
    from sim.world import World

    world = World(grasp_spec(30, 0.0104, 0.0064))
    for _ in range(30):
        world.step()
    system = world.volumetric
    x = system.state["mpm_x"]
    fx = system.state["fem_x"]
    radius = 0.25 * system.mpm.dx
    for b, side in ((0, 1.0), (1, -1.0)):
        gel = fx[system.fem.offsets[b]:system.fem.offsets[b + 1]][system.fem_bodies[b].mesh.gel_nodes]
        # the deformed gel surface along x, at each particle's (y, z): nearest gel node
        near = np.argmin(((x[:, None, 1:] - gel[None, :, 1:]) ** 2).sum(-1), axis=1)
        beyond = side * (x[:, 0] - gel[near, 0])  # > 0: the particle is inside the pad
        assert beyond.max() < radius, f"a particle is {beyond.max():.2e} m inside pad {b}"
    # the pads really gripped: the object is narrower along x than it started
    assert np.ptp(x[:, 0]) < 0.0079
    assert system.contact_count() > 0


@pytest.fixture(scope="module")
def press():
    """One world for the gradient tests: Taichi compiles a system's kernels per instance."""
    from sim.world import World

    return World(press_spec(4, 0.0079, 0.0076))


@pytest.mark.slow  # ~35 s warm; the reverse-mode contact kernels compile for minutes on a cold cache
def test_gradients_of_a_pad_pressing_an_mpm_object_match_central_differences(press):
    world = press
    kinds = ("fem_youngs_modulus", "mpm_youngs_modulus", "contact_stiffness", "contact_friction", "actions")
    results = check_volumetric_gradients(world, kinds)
    assert [r.kind for r in results] == list(kinds)
    for r in results:
        assert not r.inactive, f"{r.kind} does not act on this run"
        assert r.rel_error <= 1e-3, f"{r.kind}: adjoint {r.analytic:.6e} vs FD {r.numeric:.6e}"


def test_checkpointed_backward_gives_the_same_gradient_with_fewer_stored_states(press, monkeypatch):
    """Every step's state kept, the forward's substeps on the tape: the backward recomputes
    nothing. Segments of 2 steps store 2 states instead of 4 and recompute the rest, and
    substeps recomputed one at a time instead of all 3 together (every ring row reused):
    the same result."""
    system = press.volumetric
    assert (system.substeps, system.chunk, system.tape_steps) == (3, 3, 8)  # whole steps fit the ring and tape budgets
    ring = (system.mpm.x, system.mpm.tau, system.mpm.fext, system.fem.x, system.fem.fc, system.contact.px)
    assert {f.shape[0] for f in ring} == {8 * 3 + 1}
    target = {"mpm_x": np.random.default_rng(1).normal(size=(system.mpm.n, 3))}
    substeps = []
    monkeypatch.setattr(system, "substep", lambda s, run=system.substep: (substeps.append(s), run(s)))
    sparse = VolumetricRun(press, segment=2, chunk=1)
    del substeps[:]
    b = sparse.backward(target)
    recomputed = len(substeps)
    every = VolumetricRun(press, segment=1)
    del substeps[:]
    a = every.backward(target)
    assert sorted(every.checkpoints) == [0, 1, 2, 3] and sorted(sparse.checkpoints) == [0, 2]
    assert sparse.memory_bytes() == every.memory_bytes() // 2
    # sparse: each segment's second step, then each step's substeps twice (chunk starts, chunks)
    assert recomputed == 2 * 3 + 4 * 2 * 3 and substeps == []
    for key in a.params:
        assert np.allclose(a.params[key], b.params[key], rtol=1e-10, atol=0), key
    assert np.allclose(a.actions, b.actions, rtol=1e-10, atol=1e-14)
    assert np.abs(a.params["mpm_youngs_modulus"]).max() > 0
    # a run whose tape another run's forward took over recomputes its steps (once each)
    VolumetricRun(press, segment=1)
    del substeps[:]
    c = every.backward(target)
    assert len(substeps) == 4 * 3
    assert np.allclose(c.actions, b.actions, rtol=1e-10, atol=1e-14)


@pytest.mark.slow  # ~25 s: 300 steps forward, recomputed and reversed
def test_a_300_step_press_runs_backward_through_checkpoints_with_bounded_memory():
    """300 steps of the pad/MPM system whose states outgrow the checkpoint budget: the
    backward keeps sqrt(steps) states, not 300."""
    import dataclasses

    from sim.world import World

    spec = press_spec(300, 0.0079, 0.0074)  # same dt as the fixture: its kernels are compiled
    world = World(dataclasses.replace(spec, settings=dataclasses.replace(spec.settings, checkpoint_budget_mb=1.0)))
    run = VolumetricRun(world)
    one = sum(a.nbytes for a in run.final.values())
    assert 300 * one > 1e6 and run.segment == 17 and len(run.checkpoints) == 18
    assert run.memory_bytes() == 18 * one
    grads = run.backward({"mpm_x": np.random.default_rng(2).normal(size=run.final["mpm_x"].shape)})
    for key, g in grads.params.items():
        assert np.all(np.isfinite(g)), key
    assert np.abs(grads.params["volumetric_contact"][0]) > 0  # the pad pressed all along
    assert np.all(np.isfinite(grads.actions)) and np.abs(grads.actions[:, 0, 0]).max() > 0
