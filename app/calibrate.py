"""Calibration: fit a tactile pad's material and contact parameters so the simulated pad
reproduces what the real one recorded (a rosbag2 recording).

The scene gives the pad (its tool's tactile sensor), the surfaces it touched and the tool
path that was executed (its trajectory keyframes); the recording gives what the pad felt:
its force as geometry_msgs/WrenchStamped on ``/tactile/<sensor>/wrench`` (world frame, N),
its markers' displacements as geometry_msgs/PoseArray on ``/tactile/<sensor>/markers``
(pad frame, m, the markers in the order of the scene's pattern), or both.
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


def markers_topic(sensor: str) -> str:
    return f"/tactile/{sensor}/markers"


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
    sensor: object  # sim.tactile.sensor.TactileSensor with the scene's marker pattern; None without markers

    def readings(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the pad feels at each step's end for the given parameter values: "force"
        (steps, 3), the total force on it; "markers" (steps, markers, 3), their displacements."""
        youngs = params.get("youngs_modulus", torch.tensor(self.defaults["youngs_modulus"], dtype=torch.float64)).reshape(1)
        contact = torch.stack([
            params.get("contact_stiffness", torch.tensor(self.defaults["contact_stiffness"], dtype=torch.float64)).reshape(()),
            params.get("contact_damping", torch.tensor(self.defaults["contact_damping"], dtype=torch.float64)).reshape(()),
            params.get("friction", torch.tensor(self.defaults["friction"], dtype=torch.float64)).reshape(()),
        ])
        x, fc = self.rig.run(self.path, youngs=youngs, contact=contact)
        out = {"force": fc.sum(-2)}
        if self.sensor is not None:
            out["markers"] = self.sensor.read(x, fc, self.rig.pad_rot[0, 0], self.path[1:]).marker_displacement
        return out


def pad_calibration(scene: Scene) -> tuple[PadCalibration, str]:
    """The simulated counterpart of the recording, and the sensor's name."""
    from app.services.optimize_tasks import task_context
    from sim.tactile.sensor import TactileConfig, TactileSensor
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
    grid = (sensor["markers"]["cols"], sensor["markers"]["rows"])
    # the image is not compared: the smallest one keeps rendering out of the way
    markers = TactileSensor(rig.system.bodies[0].mesh, TactileConfig(image_size=(2, 2), markers=grid)) if min(grid) else None
    return PadCalibration(rig, torch.as_tensor(path[:, :3]), defaults, markers), sensor["name"]


def recorded(recording: dict, topic: str, key: str, steps: int, dt: float) -> np.ndarray:
    """(steps, ...) the topic's array ``key`` at each step's end, interpolated in time."""
    data = recording[topic]
    stamps = data.stamps - data.stamps[0] + dt  # the first message is the end of step 1
    t = (np.arange(steps) + 1) * dt
    if t[-1] > stamps[-1] + 1e-9:
        raise CalibrationError(f"{topic} covers {stamps[-1]:.3f} s but the scene's trajectory runs {t[-1]:.3f} s")
    values = data.arrays[key].reshape(len(stamps), -1)
    out = np.column_stack([np.interp(t, stamps, values[:, i]) for i in range(values.shape[1])])
    return out.reshape(steps, *data.arrays[key].shape[1:])


def calibrate(scene: Scene, recording_path: Path, names: list[str], noise: float = 0.01, marker_noise: float = 1e-5,
              initial: dict[str, float] | None = None) -> FitResult:
    """Fit `names` (keys of PARAMETERS) from the scene's values (or `initial`) to every signal
    the recording holds. `noise` (N) and `marker_noise` (m) scale the force and marker
    residuals, so the reported uncertainty is in those units."""
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
    signals = {"force": (wrench_topic(sensor), "force", noise), "markers": (markers_topic(sensor), "positions", marker_noise)}
    targets = {k: (torch.as_tensor(recorded(recording, topic, key, steps, dt)), scale)
               for k, (topic, key, scale) in signals.items() if topic in recording}
    if not targets:
        raise CalibrationError(f"the recording has neither {wrench_topic(sensor)} nor {markers_topic(sensor)} (topics: {sorted(recording)})")
    if "markers" in targets:
        count = 0 if sim.sensor is None else len(sim.sensor.rest_markers)
        if targets["markers"][0].shape[1] != count:
            raise CalibrationError(f"{markers_topic(sensor)} has {targets['markers'][0].shape[1]} markers, the scene's pattern {count}")
    start = {**sim.defaults, **(initial or {})}

    def residuals(theta: torch.Tensor) -> torch.Tensor:
        got = sim.readings(dict(zip(names, theta)))
        return torch.cat([((got[k] - target) / scale).reshape(-1) for k, (target, scale) in targets.items()])

    lower = [PARAMETERS[n][0] for n in names]
    upper = [PARAMETERS[n][1] for n in names]
    return fit_parameters(residuals, names, [start[n] for n in names], lower, upper)


def record_simulated(scene: Scene, path: Path, params: dict[str, float] | None = None,
                     signals: tuple[str, ...] = ("force", "markers")) -> dict[str, np.ndarray]:
    """Write what the simulated pad feels along the scene's trajectory as a recording (the
    synthetic ground truth calibration is tested against); returns the readings."""
    from robot.recording import BagRecorder

    sim, sensor = pad_calibration(scene)
    with torch.no_grad():
        got = {k: v.numpy() for k, v in sim.readings({k: torch.tensor(v, dtype=torch.float64) for k, v in (params or {}).items()}).items()}
    dt = scene.simulation.dt
    with BagRecorder(path) as bag:
        for k in range(len(got["force"])):
            stamp = int(round((k + 1) * dt * 1e9))
            if "force" in signals:
                bag.wrench(wrench_topic(sensor), stamp, got["force"][k], (0.0, 0.0, 0.0), frame_id="world")
            if "markers" in signals and "markers" in got:
                bag.markers(markers_topic(sensor), stamp, got["markers"][k], frame_id=sensor)
    return got
