"""Dynamic rigid bodies of a scene: compiled into sim.rigid bodies (half sizes, mass, pose,
friction), mesh-shaped ones and restitution reported by name, and the shipped rigid_drop
scene simulated: the box falls freely, then rests on the table top, and its pose reaches the
studio's frames and the .vtp frames of ``deft simulate``."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from app.compile import compile_scene
from app.scene.io import load_scene
from app.scene.model import Body, BoxShape, DynamicRigid, MeshShape, Scene, Simulation, Transform
from app.scene.paths import assets_root

G = 9.81
DROP = assets_root() / "scenes" / "rigid_drop.yaml"
TABLE = Body(name="table", shape=BoxShape(size=(0.3, 0.2, 0.02)), transform=Transform(position=(0, 0, -0.01)))


def _scene(*bodies: Body) -> Scene:
    return Scene(name="rigid", entities=[TABLE, *bodies], simulation=Simulation(dt=0.005, horizon=4))


def test_a_rigid_box_compiles_to_a_rigid_body_with_half_sizes_mass_pose_and_friction():
    turn = (math.cos(0.2), 0.0, 0.0, math.sin(0.2))
    box = Body(name="brick", shape=BoxShape(size=(0.04, 0.02, 0.03)), material=DynamicRigid(density=800.0, friction=0.3),
               transform=Transform(position=(0.01, -0.02, 0.05), rotation=turn))
    compiled = compile_scene(_scene(box))  # rigid bodies alone are something to simulate
    assert compiled.skipped == ()
    (body,) = compiled.spec.rigid_bodies
    assert (body.name, body.shape) == ("brick", "box")
    assert body.size == pytest.approx((0.02, 0.01, 0.015))
    assert body.mass == pytest.approx(800.0 * 0.04 * 0.02 * 0.03)
    assert body.position == pytest.approx((0.01, -0.02, 0.05))
    assert body.rotation == pytest.approx(turn)
    assert body.friction == 0.3
    assert [c.name for c in compiled.spec.colliders] == ["table"]


def test_mesh_rigid_bodies_and_restitution_are_reported_by_name():
    mug = Body(name="mug", shape=MeshShape(path="meshes/mug.obj"), material=DynamicRigid())
    bouncy = Body(name="bouncy", shape=BoxShape(size=(0.02, 0.02, 0.02)), material=DynamicRigid(restitution=0.5),
                  transform=Transform(position=(0.1, 0, 0.05)))
    compiled = compile_scene(_scene(mug, bouncy))
    assert [b.name for b in compiled.spec.rigid_bodies] == ["bouncy"]
    assert compiled.skipped == ("mug: a mesh shape cannot be a dynamic rigid body (only box, sphere, capsule, cylinder)",
                                "bouncy: restitution 0.5 is not simulated (contacts are damped penalty springs)")
    with pytest.raises(ValueError, match="no cloth, FEM, MPM or dynamic rigid body to simulate"):
        compile_scene(_scene(mug))


def test_the_dropped_box_falls_freely_then_rests_on_the_table_top():
    from sim.world import World

    spec = compile_scene(load_scene(DROP), DROP).spec
    (crate,) = spec.rigid_bodies
    half, z0 = crate.size[2], crate.position[2]
    world = World(spec)
    z, v, w, R = [], [], [], []
    for _ in range(spec.settings.steps):
        world.step()
        state = world.volumetric.state
        z.append(state["rigid_x"][0, 2])
        v.append(np.linalg.norm(state["rigid_v"][0]))
        w.append(np.linalg.norm(state["rigid_w"][0]))
    t = spec.settings.dt * np.arange(1, len(z) + 1)
    falling = t < math.sqrt(2 * (z0 - half) / G) - spec.settings.dt  # steps ending before the bottom face lands
    assert falling.sum() >= 8
    # semi-implicit Euler: the height lags the exact fall by g dt t / 2 at most (dt: the substep)
    exact = z0 - G * t[falling] ** 2 / 2
    assert np.abs(np.array(z)[falling] - exact).max() <= G * world.volumetric.dt * t[falling].max() / 2 + 1e-12
    # at rest over the last 0.1 s, flat on its bottom face, which sits a few micrometres into the table top
    assert max(v[-20:]) < 1e-3 and max(w[-20:]) < 1e-2
    assert 0.0 < -(z[-1] - half) < 2e-5
    from sim.fem.spec import quat_to_matrix

    assert quat_to_matrix(world.volumetric.state["rigid_q"][0])[2, 2] == pytest.approx(1.0, abs=1e-6)


def test_the_studio_frames_carry_the_rigid_bodys_pose_per_step():
    from app.services.simulation import simulate_scene

    scene = load_scene(DROP)
    scene = scene.model_copy(update={"simulation": scene.simulation.model_copy(update={"horizon": 6})})
    run, skipped = simulate_scene(scene, DROP)
    assert skipped == () and len(run) == 7
    z0 = scene.entity("crate").transform.position[2]
    for frame in run:
        crate = frame.entities["crate"]
        assert crate.points.shape == (0, 3) and crate.pose.shape == (4, 4)
        np.testing.assert_allclose(crate.pose[:3, :3], np.eye(3), atol=1e-6)  # a flat fall does not turn it
        assert crate.pose[2, 3] == pytest.approx(z0 - G * frame.time**2 / 2, abs=G * frame.time * 3e-4)
    assert run[6].entities["crate"].pose[2, 3] < z0 - 1e-3


def test_deft_simulate_writes_the_rigid_body_as_vtp_frames(tmp_path):
    result = CliRunner().invoke(build_cli(), ["simulate", str(DROP), "--steps", "4", "--every", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = [d.get("file") for d in ET.parse(tmp_path / "frames.pvd").getroot().iter("DataSet")]
    assert files == ["crate_000000.vtp", "crate_000002.vtp", "crate_000004.vtp"]
    piece = ET.parse(tmp_path / "crate_000004.vtp").getroot().find("PolyData/Piece")
    points = np.array(piece.find("Points/DataArray").text.split(), float).reshape(-1, 3)
    assert int(piece.get("NumberOfPolys")) == 12  # the box's two triangles per face
    t = 4 * 0.005
    centre = 0.025 - G * t**2 / 2
    assert points.min(0) == pytest.approx((-0.02, -0.02, centre - 0.015), abs=1e-4)
    assert points.max(0) == pytest.approx((0.02, 0.02, centre + 0.015), abs=1e-4)
