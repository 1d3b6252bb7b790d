"""Two tactile pads closing on a soft FEM block (the studio's tactile_press, scaled down):
at contact the pads' nodes stayed finite only while the Hunt-Crossley damping of the
explicit contact stayed below its stability bound (c dt / m < 2); a press a fraction of a
millimetre deep crossed it and both pads went to NaN within a few substeps. Now the
damping is capped per pair (sim.coupling.DAMPING_CAP), and the pads squeeze the block with
the force its stiffness gives."""

import numpy as np

from sim.fem.mesh import box_body, flat_pad
from sim.fem.spec import FemBodySpec, FemMaterial
from sim.spec import ColliderSpec, Settings, ToolSpec, WorldSpec
from sim.tactile.sensor import TactileConfig

FINGER = (0.004, 0.008, 0.008)  # finger box half-extents
THICK = 0.003  # pad thickness
BLOCK = 0.012  # block edge
E_BLOCK = 1e5


def _pad(side: float) -> FemBodySpec:
    """A flat 1.2 x 1.2 cm pad in the finger at +x (side 1) or -x (side -1), gel facing the other."""
    s = np.sqrt(0.5)
    return FemBodySpec(f"pad_{'left' if side > 0 else 'right'}", flat_pad((0.012, 0.012, THICK), (8, 8, 2)),
                       FemMaterial(3e5, 0.45, 1100.0, 20.0), position=(-side * (FINGER[0] - THICK), 0, 0),
                       rotation=(s, 0.0, -side * s, 0.0), mass_scale=4.0, tactile=TactileConfig((16, 16), (3, 3)),
                       mount=f"gripper.{'left' if side > 0 else 'right'}")


def press_spec(steps: int, squeeze: float) -> WorldSpec:
    """The fingers start 0.5 mm off the block's faces and close at 0.3 m/s each (the studio
    scene's pads hit the block at about 0.4 m/s) until each has squeezed it by ``squeeze``."""
    block = FemBodySpec("block", box_body((BLOCK,) * 3, (4, 4, 4)), FemMaterial(E_BLOCK, 0.3, 1100.0, 20.0))
    open0 = BLOCK + 1e-3
    fingers = (ColliderSpec("gripper.left", "box", FINGER), ColliderSpec("gripper.right", "box", FINGER))
    tool = ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), opening=open0, finger_half=FINGER)
    dt = 1e-3
    actions = np.zeros((steps, 1, 8))
    actions[:, 0, 3] = 1.0
    actions[:, 0, 7] = np.maximum(open0 - 0.6 * dt * np.arange(1, steps + 1), BLOCK - 2 * squeeze)
    return WorldSpec(Settings(dt=dt, steps=steps, gravity=(0, 0, 0)), colliders=fingers, tools=(tool,),
                     actions=actions, fem_bodies=(block, _pad(1.0), _pad(-1.0)))


def test_pads_pressing_a_soft_block_stay_finite_and_push_it_inwards():
    from sim.world import World

    steps, squeeze = 16, 1e-3
    world = World(press_spec(steps, squeeze))
    system = world.volumetric
    world.reset()
    normal, push = {1: [], 2: []}, {1: [], 2: []}
    for k in range(steps):  # World.step raises SimulationError on NaN/inf or runaway speed
        world.step()
        if k >= steps - 4:  # the last 4 ms, fingers still: average out the block's ringing
            readings, f = system.tactile(k + 1), system.node_forces()
            for b in (1, 2):
                normal[b].append(readings[system.fem_bodies[b].name].total_force.numpy()[2])
                push[b].append(f[system.fem.offsets[b]:system.fem.offsets[b + 1]].sum(0))
    x, v = system.state["fem_x"], system.state["fem_v"]
    assert np.isfinite(x).all() and np.isfinite(v).all()
    block = x[: system.fem.offsets[1]]
    # how much the block really is compressed (the pads and the contact give a little)
    strain = 1.0 - np.ptp(block[:, 0]) / BLOCK
    assert 0.5 * (2 * squeeze / BLOCK) < strain < 2 * squeeze / BLOCK
    stiffness_says = E_BLOCK * BLOCK**2 * strain
    for b, side in ((1, 1.0), (2, -1.0)):
        # pad frame: the gel faces +z, so the block pushes every pad along -z ...
        assert max(normal[b]) < 0
        # ... which is outwards in the world: the left pad (at +x) to +x, the right one to -x
        pad_push = np.mean(push[b], axis=0)
        assert side * pad_push[0] > 0 and abs(pad_push[0]) > 20 * np.abs(pad_push[1:]).max()
        # as hard as the block's stiffness says, E A strain, stiffened a little by the pads'
        # friction that keeps its faces from bulging
        assert stiffness_says < -np.mean(normal[b]) < 1.5 * stiffness_says, (np.mean(normal[b]), stiffness_says)
    # pushed equally from both sides, the block stays centred between the pads
    assert abs(block[:, 0].mean()) < 0.05 * squeeze
