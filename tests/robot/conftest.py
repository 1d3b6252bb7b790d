"""Shared robot fixtures: the shipped arm and a small smooth trajectory it can follow."""

from pathlib import Path

import numpy as np
import pytest

from robot.trajectory import joint_trajectory_through
from robot.urdf import load_urdf

REPO = Path(__file__).resolve().parents[2]
ARM_URDF = REPO / "assets" / "robots" / "arm7.urdf"
READY = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


@pytest.fixture(scope="session")
def arm():
    return load_urdf(ARM_URDF)


def smooth_trajectory(arm, start=READY, delta=0.3, duration=2.0, points=21):
    """Every joint moving ``delta`` rad on a cosine profile, at rest at both ends."""
    times = np.linspace(0.0, duration, points)
    s = 0.5 - 0.5 * np.cos(np.pi * times / duration)
    q = start + np.outer(s, np.full(arm.dof, delta))
    return joint_trajectory_through(arm.joint_names, times, q)
