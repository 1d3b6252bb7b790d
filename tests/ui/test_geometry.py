"""Display geometry agrees with what the simulator and the robot code use."""

from __future__ import annotations

import numpy as np
import pytest

from app.compile.trajectory import interpolation_matrix
from app.scene import model as m
from app.scene.paths import assets_root
from app.services.robot_view import robot_visuals
from robot.kinematics import forward
from robot.urdf import load_urdf
from ui import geometry


@pytest.mark.parametrize("kind", ["linear", "cubic", "bspline"])
def test_trajectory_path_is_the_simulated_tool_path(kind):
    keys = [m.Keyframe(time=t, position=p) for t, p in
            [(0.0, (0, 0, 0.3)), (0.2, (0.1, 0, 0.1)), (0.5, (0.1, 0.2, 0.05)), (0.9, (0, 0.1, 0.3))]]
    trajectory = m.Trajectory(tool="gripper", interpolation=kind, keyframes=keys)
    points, path = geometry.trajectory_path(trajectory, samples=91)
    positions = np.array([k.position for k in keys])
    expected = interpolation_matrix([k.time for k in keys], 0.01, 90, kind) @ positions
    np.testing.assert_allclose(path[1:], expected, atol=1e-12)
    np.testing.assert_allclose(path[0], positions[0])
    np.testing.assert_allclose(points, positions)


def test_cloth_display_mesh_orders_vertices_like_the_simulator():
    from sim.geometry import sheet  # the shell simulator's sheet: frames index its vertices

    body = m.Body(name="c", shape=m.ClothShape(size=(0.3, 0.2), resolution=(7, 5)), material=m.ThinShell())
    mesh = geometry.shape_mesh(body.shape, resolve=lambda p: p)
    vertices, _ = sheet(7, 5, 0.3, 0.2)
    np.testing.assert_allclose(mesh.points, vertices, atol=1e-7)


def test_robot_links_sit_on_the_kinematic_chain():
    urdf = assets_root() / "robots" / "arm7.urdf"
    model = load_urdf(urdf)
    base = np.eye(4)
    base[:3, 3] = (-0.45, 0.0, 0.0)
    q = model.mid_configuration()
    visuals = robot_visuals(urdf, base, q)
    assert {v.kind for v in visuals} <= {"box", "cylinder", "sphere"} and len(visuals) >= 8
    # the last link's visual frame moves with the tool: its pose is base @ FK @ its origin
    tool = base @ forward(model, q)
    last = [v for v in visuals if v.link == model.chain[-1].child] or [visuals[-1]]
    assert np.linalg.norm(last[0].pose[:3, 3] - tool[:3, 3]) < 0.3
    parts = geometry.robot_parts(m.Body(name="arm", shape=m.UrdfShape(path="robots/arm7.urdf"),
                                        transform=m.Transform(position=(-0.45, 0, 0))), lambda rel: assets_root() / rel)
    assert len(parts) == len(visuals)
    np.testing.assert_allclose(parts[0].mesh.center, visuals[0].pose[:3, 3], atol=1e-6)
