"""Calibration: fit a tactile pad's material and contact parameters, and the friction of the
objects it moves, so the simulation reproduces what was recorded (a rosbag2 recording).

The scene gives the pad (its tool's tactile sensor), the surfaces it touched, the objects it
pushed (bodies of ``rigid`` material) and the tool path that was executed (its trajectory
keyframes). The recording gives what happened, any of:
  - the pad's force, geometry_msgs/WrenchStamped on ``/tactile/<sensor>/wrench`` (world
    frame, N), in scenes without moving objects;
  - its markers' displacements, geometry_msgs/PoseArray on ``/tactile/<sensor>/markers``
    (pad frame, m, the markers in the order of the scene's pattern);
  - each moving object's pose, geometry_msgs/PoseStamped on ``/objects/<body>/pose``
    (world frame, as a motion-capture system or an object tracker gives it).
Without moving objects the pad presses with its gel down (sim.tasks.pad_rig); with them it
pushes with its gel facing the other finger, along the gripper's x (sim.tasks.tactile_rigid),
and the objects' poses come from the checkpointed adjoint of the volumetric world with the
pose error of every step injected. Parameters are fitted with gradients (sim.optim.fit) and
reported with one-standard-deviation uncertainties and the fit error.
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
    "object_friction": (0.01, 3.0),  # Coulomb coefficient, every moving object against the fixed surfaces
}


class CalibrationError(ValueError):
    """The scene or the recording cannot be calibrated against (named in the message)."""


def wrench_topic(sensor: str) -> str:
    return f"/tactile/{sensor}/wrench"


def markers_topic(sensor: str) -> str:
    return f"/tactile/{sensor}/markers"


def pose_topic(body: str) -> str:
    return f"/objects/{body}/pose"


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


def _marker_reader(mesh, sensor: dict):
    """The scene's marker pattern on the simulated pad's mesh; None without markers."""
    from sim.tactile.sensor import TactileConfig, TactileSensor

    grid = (sensor["markers"]["cols"], sensor["markers"]["rows"])
    # the image is not compared: the smallest one keeps rendering out of the way
    return TactileSensor(mesh, TactileConfig(image_size=(2, 2), markers=grid)) if min(grid) else None


@dataclass
class PadCalibration:
    """A pad pressing the scene's fixed surfaces, simulated with candidate parameters."""

    rig: object  # sim.tasks.pad_rig.PadRig
    path: torch.Tensor  # (steps + 1, 3)
    defaults: dict[str, float]
    sensor: object  # sim.tactile.sensor.TactileSensor with the scene's marker pattern; None without markers
    objects: tuple[str, ...] = ()  # no moving objects

    def readings(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the pad feels at each step's end for the given parameter values: "force"
        (steps, 3), the total force on it; "markers" (steps, markers, 3), their displacements."""
        def value(name):
            return params.get(name, torch.tensor(self.defaults[name], dtype=torch.float64)).reshape(())

        contact = torch.stack([value("contact_stiffness"), value("contact_damping"), value("friction")])
        x, fc = self.rig.run(self.path, youngs=value("youngs_modulus").reshape(1), contact=contact)
        out = {"force": fc.sum(-2)}
        if self.sensor is not None:
            out["markers"] = self.sensor.read(x, fc, self.rig.pad_rot[0, 0], self.path[1:]).marker_displacement
        return out


@dataclass
class PushCalibration:
    """A pad pushing the scene's moving objects across its fixed surfaces, simulated with
    candidate parameters (sim.tasks.tactile_rigid.PusherRig)."""

    rig: object  # sim.tasks.tactile_rigid.PusherRig
    path: torch.Tensor  # (steps + 1, 3)
    defaults: dict[str, float]
    sensor: object  # as PadCalibration's
    objects: tuple[str, ...]  # the moving bodies' names, in the rig's order

    def readings(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """At each step's end: "pose:<body>" (steps, 7), each object's centre and quaternion
        (w, x, y, z); "markers" as PadCalibration's."""
        from sim.fem.spec import quat_to_matrix

        states = self.rig.rollout(self.path, params)
        out = {f"pose:{name}": torch.cat([states["rigid_x"][:, b], states["rigid_q"][:, b]], -1)
               for b, name in enumerate(self.objects)}
        if self.sensor is not None:
            x = states["fem_x"]
            out["markers"] = self.sensor.read(x, torch.zeros_like(x), quat_to_matrix(self.rig.pad.rotation),
                                              self.path[1:]).marker_displacement
        return out


def pad_calibration(scene: Scene) -> tuple[PadCalibration | PushCalibration, str]:
    """The simulated counterpart of the recording, and the sensor's name."""
    from app.services.optimize_tasks import task_context
    from sim.rigid.spec import RigidBodySpec
    from sim.tasks.pad_rig import build_pad_rig
    from sim.tasks.tactile_rigid import PusherRig

    ctx = task_context(scene)
    if not ctx.sensors:
        raise CalibrationError(f"tool {ctx.tool!r} carries no tactile sensor to calibrate")
    sensor = ctx.sensors[0]
    path = tool_path(scene.trajectory, ctx.horizon, ctx.dt)
    moving = [b for b in ctx.bodies if b["material"]["kind"] == "rigid"]
    if moving:
        try:
            rig = PusherRig(ctx, "x" if sensor["finger"] == "left" else "-x", [RigidBodySpec.from_scene(b) for b in moving],
                            ctx.horizon)
        except ValueError as e:  # a pad or body the rig cannot simulate, named in the message
            raise CalibrationError(str(e)) from None
        contact = rig.defaults["volumetric_contact"]
        defaults = {"youngs_modulus": sensor["material"]["youngs_modulus"], "contact_stiffness": contact[0],
                    "contact_damping": contact[1], "friction": contact[2], "object_friction": moving[0]["material"]["friction"]}
        return PushCalibration(rig, torch.as_tensor(path[:, :3]), defaults, _marker_reader(rig.pad.mesh, sensor),
                               tuple(b["name"] for b in moving)), sensor["name"]
    rig = build_pad_rig(sensor, ctx.bodies, ctx.horizon, ctx.dt, path[0, :3])
    cp = rig.system.contact_params
    defaults = {
        "youngs_modulus": sensor["material"]["youngs_modulus"],
        "friction": cp.friction,
        "contact_stiffness": cp.stiffness,
        "contact_damping": cp.damping,
    }
    return PadCalibration(rig, torch.as_tensor(path[:, :3]), defaults, _marker_reader(rig.system.bodies[0].mesh, sensor)), sensor["name"]


def at_steps(topic: str, stamps: np.ndarray, values: np.ndarray, steps: int, dt: float) -> np.ndarray:
    """(steps, ...) a topic's ``values`` (one row per message at ``stamps``) at each step's
    end, interpolated in time."""
    stamps = stamps - stamps[0] + dt  # the first message is the end of step 1
    t = (np.arange(steps) + 1) * dt
    if t[-1] > stamps[-1] + 1e-9:
        raise CalibrationError(f"{topic} covers {stamps[-1]:.3f} s but the scene's trajectory runs {t[-1]:.3f} s")
    rows = values.reshape(len(stamps), -1)
    out = np.column_stack([np.interp(t, stamps, rows[:, i]) for i in range(rows.shape[1])])
    return out.reshape(steps, *values.shape[1:])


def recorded_pose(topic: str, data, steps: int, dt: float) -> np.ndarray:
    """(steps, 7) an object's recorded centre and quaternion (w, x, y, z) at each step's end
    (``data``: the topic's robot.recording.TopicData)."""
    q = data.arrays["orientation"] / np.linalg.norm(data.arrays["orientation"], axis=1, keepdims=True)
    # q and -q are one rotation: neighbours are made to agree in sign so that interpolating them means something
    q[1:] *= np.cumprod(np.where(np.sum(q[1:] * q[:-1], axis=1) < 0, -1.0, 1.0))[:, None]
    pose = at_steps(topic, data.stamps, np.hstack([data.arrays["position"], q]), steps, dt)
    pose[:, 3:] /= np.linalg.norm(pose[:, 3:], axis=1, keepdims=True)
    return pose


def rotation_error(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3) the rotation (rad, axis times angle for small angles) from quaternions
    ``target`` to ``q`` (w, x, y, z), whichever of q and -q a source reports."""
    q = q / q.norm(dim=-1, keepdim=True)
    w1, v1 = target[..., :1], -target[..., 1:]  # the target's inverse
    w2, v2 = q[..., :1], q[..., 1:]
    w = w1 * w2 - (v1 * v2).sum(-1, keepdim=True)
    v = w1 * v2 + w2 * v1 + torch.linalg.cross(v1, v2, dim=-1)
    return 2 * torch.where(w < 0, -v, v)


def calibrate(scene: Scene, recording_path: Path, names: list[str], noise: float = 0.01, marker_noise: float = 1e-5,
              initial: dict[str, float] | None = None, pose_noise: float = 1e-4, angle_noise: float = 1e-3,
              report=None) -> FitResult:
    """Fit `names` (keys of PARAMETERS) from the scene's values (or `initial`) to every signal
    the recording holds that the scene's simulation gives. `noise` (N), `marker_noise` (m),
    `pose_noise` (m) and `angle_noise` (rad) scale the force, marker, object position and
    object orientation residuals, so the reported uncertainty is in those units.
    `report(line)` is told which topics are fitted and which are not."""
    from robot.recording import read_bag

    unknown = [n for n in names if n not in PARAMETERS]
    if unknown or not names:
        raise CalibrationError(f"unknown parameters {unknown}; calibrate any of {sorted(PARAMETERS)}")
    sim, sensor = pad_calibration(scene)
    if "object_friction" in names and not sim.objects:
        raise CalibrationError("object_friction needs a moving object (a body of rigid material) in the scene")
    try:
        recording = read_bag(recording_path)
    except Exception as e:  # rosbags reports a missing or damaged bag in several ways
        raise CalibrationError(f"cannot read the recording {recording_path}: {e}") from None
    steps, dt = scene.simulation.horizon, scene.simulation.dt
    topics = {"markers": markers_topic(sensor), **{f"pose:{o}": pose_topic(o) for o in sim.objects}}
    if not sim.objects:
        topics["force"] = wrench_topic(sensor)
    elif wrench_topic(sensor) in recording and report is not None:
        report(f"not fitted: {wrench_topic(sensor)} (the pad's force is simulated for calibration only without moving objects)")
    targets = {}
    for signal, topic in topics.items():
        if topic not in recording:
            continue
        data = recording[topic]
        if signal.startswith("pose:"):
            targets[signal] = torch.as_tensor(recorded_pose(topic, data, steps, dt))
        else:
            key = "force" if signal == "force" else "positions"
            targets[signal] = torch.as_tensor(at_steps(topic, data.stamps, data.arrays[key], steps, dt))
    if not targets:
        raise CalibrationError(f"the recording has none of {sorted(topics.values())} (topics: {sorted(recording)})")
    if report is not None:
        report(f"fitting {', '.join(topics[k] for k in targets)}")
    if "markers" in targets:
        count = 0 if sim.sensor is None else len(sim.sensor.rest_markers)
        if targets["markers"].shape[1] != count:
            raise CalibrationError(f"{markers_topic(sensor)} has {targets['markers'].shape[1]} markers, the scene's pattern {count}")
    start = {**sim.defaults, **(initial or {})}

    def residual(signal: str, got: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if signal.startswith("pose:"):
            return torch.cat([((got[:, :3] - target[:, :3]) / pose_noise).reshape(-1),
                              (rotation_error(got[:, 3:], target[:, 3:]) / angle_noise).reshape(-1)])
        return ((got - target) / (marker_noise if signal == "markers" else noise)).reshape(-1)

    def residuals(theta: torch.Tensor) -> torch.Tensor:
        got = sim.readings(dict(zip(names, theta)))
        return torch.cat([residual(k, got[k], target) for k, target in targets.items()])

    lower = [PARAMETERS[n][0] for n in names]
    upper = [PARAMETERS[n][1] for n in names]
    return fit_parameters(residuals, names, [start[n] for n in names], lower, upper)


def record_simulated(scene: Scene, path: Path, params: dict[str, float] | None = None,
                     signals: tuple[str, ...] = ("force", "markers", "poses")) -> dict[str, np.ndarray]:
    """Write what the simulation gives along the scene's trajectory as a recording (the
    synthetic ground truth calibration is tested against): of ``signals``, those the scene
    simulates. Returns the readings."""
    from robot.recording import BagRecorder

    sim, sensor = pad_calibration(scene)
    with torch.no_grad():
        got = {k: v.numpy() for k, v in sim.readings({k: torch.tensor(v, dtype=torch.float64) for k, v in (params or {}).items()}).items()}
    dt = scene.simulation.dt
    with BagRecorder(path) as bag:
        for k in range(scene.simulation.horizon):
            stamp = int(round((k + 1) * dt * 1e9))
            if "force" in signals and "force" in got:
                bag.wrench(wrench_topic(sensor), stamp, got["force"][k], (0.0, 0.0, 0.0), frame_id="world")
            if "markers" in signals and "markers" in got:
                bag.markers(markers_topic(sensor), stamp, got["markers"][k], frame_id=sensor)
            if "poses" in signals:
                for name in sim.objects:
                    bag.pose(pose_topic(name), stamp, got[f"pose:{name}"][k, :3], got[f"pose:{name}"][k, 3:])
    return got
