import math

import numpy as np
import pytest

from robot.kinematics import forward
from robot.urdf import UrdfError, load_urdf
from tests.robot.conftest import ARM_URDF, READY

# The Panda's published modified DH rows (a, d, alpha), then the flange (d = 0.107).
DH = [(0, 0.333, 0), (0, 0, -math.pi / 2), (0, 0.316, math.pi / 2), (0.0825, 0, math.pi / 2),
      (-0.0825, 0.384, -math.pi / 2), (0, 0, math.pi / 2), (0.088, 0, math.pi / 2)]


def dh_flange(q):
    """Tool flange pose from the DH table, written independently of the URDF."""
    t = np.eye(4)
    for (a, d, alpha), theta in list(zip(DH, q)) + [((0, 0.107, 0), 0.0)]:
        ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
        t = t @ np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])
    return t


def test_arm_chain_and_limits(arm):
    assert arm.joint_names == tuple(f"joint{i}" for i in range(1, 8))
    assert arm.base_link == "base" and arm.tool_link == "tcp"
    assert arm.limit_array("upper")[3] == pytest.approx(-0.0698)
    assert arm.limit_array("velocity").tolist() == [2.175] * 4 + [2.61] * 3
    assert arm.limit_array("acceleration")[1] == 7.5 and arm.limit_array("jerk")[6] == 10000


def test_flange_matches_published_dh(arm):
    flange = load_urdf(ARM_URDF, tool_link="flange")
    rng = np.random.default_rng(3)
    for q in [READY] + list(rng.uniform(arm.limit_array("lower"), arm.limit_array("upper"), (5, 7))):
        np.testing.assert_allclose(forward(flange, q), dh_flange(q), atol=1e-12)


def test_ready_pose_tool_position(arm):
    # The Panda's ready pose puts its TCP (0.1034 m past the flange) at about (0.307, 0, 0.487).
    np.testing.assert_allclose(forward(arm, READY)[:3, 3], [0.307, 0.0, 0.487], atol=2e-3)


@pytest.mark.parametrize("text, message", [
    ("<robot name='r'><link name='a'/><link name='b'/><joint name='j' type='revolute'>"
     "<parent link='a'/><child link='b'/></joint></robot>", "joint 'j': revolute joint has no <limit>"),
    ("<robot name='r'><link name='a'/><link name='b'/><joint name='j' type='floating'>"
     "<parent link='a'/><child link='b'/></joint></robot>", "type 'floating' is not supported"),
    ("<robot name='r'><link name='a'/><joint name='j' type='fixed'>"
     "<parent link='a'/><child link='c'/></joint></robot>", "link 'c' is not defined"),
    ("<robot name='r'><link name='a'/><link name='b'/><joint name='j' type='revolute'><parent link='a'/>"
     "<child link='b'/><limit lower='1' upper='-1' velocity='1'/></joint></robot>", "lower 1.0 is not below upper -1.0"),
    ("<robot name='r'><link name='a'/><link name='b'/><joint name='j' type='fixed'>"
     "<parent link='a'/><child link='b'/></joint></robot>", "no movable joint"),
    ("<robot name='r'><link", "is not valid XML"),
])
def test_bad_urdf_is_named(tmp_path, text, message):
    path = tmp_path / "bad.urdf"
    path.write_text(text)
    with pytest.raises(UrdfError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_urdf(path)


def test_missing_file_and_unknown_tool(tmp_path):
    with pytest.raises(UrdfError, match="cannot read URDF"):
        load_urdf(tmp_path / "none.urdf")
    with pytest.raises(UrdfError, match="tool link 'hand_tip' is not defined"):
        load_urdf(ARM_URDF, tool_link="hand_tip")
