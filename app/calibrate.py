"""Calibration: fit a tactile pad's material and contact parameters so the simulated pad
reproduces the forces recorded on the real one (a rosbag2 recording).

The scene gives the pad (its tool's tactile sensor), the surfaces it touched and the tool
path that was executed (its trajectory keyframes); the recording gives the force the pad
felt, as geometry_msgs/WrenchStamped on ``/tactile/<sensor>/wrench`` (world frame, N).
Parameters are fitted with gradients through the FEM rollout (sim.optim.fit), and reported
with one-standard-deviation uncertainties and the fit error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.scene.model import Scene, Trajectory
from sim.optim.fit import FitResult, fit_parameters

# name -> (lower, upper) bounds of each fittable parameter
PARAMETERS = {
    "youngs_modulus": (1e3, 1e8),  # Pa, the pad's elastomer
    "friction": (0.01, 3.0),  # Coulomb coefficient, pad against the surfaces
    "contact_stiffness": (1e7, 1e13),  # N/m^3 penalty stiffness
    "contact_damping": (0.01, 1e3),  # s/m, Hunt-Crossley: the pressure scales by (1 - damping x normal speed)
}


class CalibrationError(ValueError):
    """The scene or the recording cannot be calibrated against (named in the message)."""


def wrench_topic(sensor: str) -> str:
    return f"/tactile/{sensor}/wrench"


def tool_path(trajectory: Trajectory | None, steps: int, dt: float) -> np.ndarray:
    """(steps + 1, 4) tool x, y, z, opening at every step from the scene's keyframes, with
    the scene compiler's interpolation (app.compile.trajectory)."""
    from app.compile.trajectory import interpolation_matrix

    if trajectory is None or len(trajectory.keyframes) < 2:
        raise CalibrationError("the scene needs a trajectory of at least two keyframes: the motion that was recorded")
    frames = trajectory.keyframes
    values = np.array([[*k.position, k.opening] for k in frames])
    weights = interpolation_matrix(np.array([k.time for k in frames]), dt, steps, trajectory.interpolation)
    return np.vstack([values[:1], weights @ values])


@dataclass
class PadCalibration:
    """Everything needed to simulate the recorded motion with candidate parameters."""

    rig: object  # sim.tasks.pad_rig.PadRig
    path: torch.Tensor  # (steps + 1, 3)
    defaults: dict[str, float]

    def forces(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """(steps, 3) total force on the pad for the given parameter values."""
        youngs = params.get("youngs_modulus", torch.tensor(self.defaults["youngs_modulus"], dtype=torch.float64)).reshape(1)
        contact = torch.stack([
            params.get("contact_stiffness", torch.tensor(self.defaults["contact_stiffness"], dtype=torch.float64)).reshape(()),
            params.get("contact_damping", torch.tensor(self.defaults["contact_damping"], dtype=torch.float64)).reshape(()),
            params.get("friction", torch.tensor(self.defaults["friction"], dtype=torch.float64)).reshape(()),
        ])
        _, fc = self.rig.run(self.path, youngs=youngs, contact=contact)
        return fc.sum(-2)


def pad_calibration(scene: Scene) -> tuple[PadCalibration, str]:
    """The simulated counterpart of the recording, and the sensor's name."""
    from app.services.optimize_tasks import task_context
    from sim.tasks.pad_rig import build_pad_rig

    ctx = task_context(scene)
    if not ctx.sensors:
        raise CalibrationError(f"tool {ctx.tool!r} carries no tactile sensor to calibrate")
    sensor = ctx.sensors[0]
    path = tool_path(scene.trajectory, ctx.horizon, ctx.dt)
    rig = build_pad_rig(sensor, ctx.bodies, ctx.horizon, ctx.dt, path[0, :3])
    cp = rig.system.contact_params
    defaults = {
        "youngs_modulus": sensor["material"]["youngs_modulus"],
        "friction": cp.friction,
        "contact_stiffness": cp.stiffness,
        "contact_damping": cp.damping,
    }
    return PadCalibration(rig, torch.as_tensor(path[:, :3]), defaults), sensor["name"]


def recorded_forces(recording: dict, sensor: str, steps: int, dt: float) -> np.ndarray:
    """(steps, 3) recorded force at each step's end, interpolated in time from the bag."""
    topic = wrench_topic(sensor)
    if topic not in recording:
        raise CalibrationError(f"the recording has no {topic} (topics: {sorted(recording)})")
    data = recording[topic]
    stamps = data.stamps - data.stamps[0] + dt  # the first message is the end of step 1
    t = (np.arange(steps) + 1) * dt
    if t[-1] > stamps[-1] + 1e-9:
        raise CalibrationError(f"{topic} covers {stamps[-1]:.3f} s but the scene's trajectory runs {t[-1]:.3f} s")
    return np.column_stack([np.interp(t, stamps, data.arrays["force"][:, i]) for i in range(3)])


def calibrate(scene: Scene, recording_path: Path, names: list[str], noise: float = 0.01, initial: dict[str, float] | None = None) -> FitResult:
    """Fit `names` (keys of PARAMETERS) from the scene's values (or `initial`) to the recording.
    `noise` (N) scales the force residuals, so the reported uncertainty is in those units."""
    from robot.recording import read_bag

    unknown = [n for n in names if n not in PARAMETERS]
    if unknown or not names:
        raise CalibrationError(f"unknown parameters {unknown}; calibrate any of {sorted(PARAMETERS)}")
    sim, sensor = pad_calibration(scene)
    try:
        recording = read_bag(recording_path)
    except Exception as e:  # rosbags reports a missing or damaged bag in several ways
        raise CalibrationError(f"cannot read the recording {recording_path}: {e}") from None
    steps, dt = scene.simulation.horizon, scene.simulation.dt
    target = torch.as_tensor(recorded_forces(recording, sensor, steps, dt))
    start = {**sim.defaults, **(initial or {})}

    def residuals(theta: torch.Tensor) -> torch.Tensor:
        forces = sim.forces(dict(zip(names, theta)))
        return ((forces - target) / noise).reshape(-1)

    lower = [PARAMETERS[n][0] for n in names]
    upper = [PARAMETERS[n][1] for n in names]
    return fit_parameters(residuals, names, [start[n] for n in names], lower, upper)


def record_simulated(scene: Scene, path: Path, params: dict[str, float] | None = None) -> np.ndarray:
    """Write what the simulated pad feels along the scene's trajectory as a recording (the
    synthetic ground truth calibration is tested against); returns the (steps, 3) forces."""
    from robot.recording import BagRecorder

    sim, sensor = pad_calibration(scene)
    with torch.no_grad():
        forces = sim.forces({k: torch.tensor(v, dtype=torch.float64) for k, v in (params or {}).items()}).numpy()
    dt = scene.simulation.dt
    with BagRecorder(path) as bag:
        for k, f in enumerate(forces):
            bag.wrench(wrench_topic(sensor), int(round((k + 1) * dt * 1e9)), f, (0.0, 0.0, 0.0), frame_id="world")
    return forces
