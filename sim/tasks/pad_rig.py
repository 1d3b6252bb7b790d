"""A tactile pad on the tool pressing against the scene's rigid bodies (FEM, sim.fem).

The pad hangs under the tool with its gel facing down (-z): its back layer follows the
tool's position, its gel surface lies ``thickness`` below it. Motions are quasi-static, so
the pad's inertia is mass-scaled and strongly damped (the forces it reports are then the
elastic response to the path, not ringing); the explicit substep is picked below the
solver's stability limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sim.fem.mesh import flat_pad
from sim.fem.solver import FemSystem, Trajectory, stable_dt
from sim.fem.spec import ContactParams, FemBodySpec, FemMaterial, ShapeSpec, quat_to_matrix

GEL_DOWN = (0.0, 1.0, 0.0, 0.0)  # half turn about x: the pad's +z gel faces world -z
RIGID_SHAPES = {"box", "sphere", "cylinder", "capsule"}


def shape_of(body: dict) -> ShapeSpec:
    """A scene body's shape (scene units: full box edges, cylinder height) as a contact shape."""
    shape = body["shape"]
    kind = shape["kind"]
    if kind == "box":
        return ShapeSpec("box", tuple(0.5 * s for s in shape["size"]))
    if kind == "sphere":
        return ShapeSpec("sphere", (shape["radius"], 0.0, 0.0))
    if kind == "cylinder":
        return ShapeSpec("cylinder", (shape["radius"], 0.5 * shape["height"], 0.0))
    if kind == "capsule":
        return ShapeSpec("capsule", (shape["radius"], 0.5 * shape["length"], 0.0))
    raise ValueError(f"body {body['name']!r}: a {kind!r} cannot touch a tactile pad (use one of {sorted(RIGID_SHAPES)})")


@dataclass
class PadRig:
    system: FemSystem
    thickness: float
    shape_pos: torch.Tensor  # (steps + 1, shapes, 3), static
    shape_rot: np.ndarray
    pad_rot: np.ndarray

    def run(self, tool_path: torch.Tensor, youngs=None, contact=None, shape_pos=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Node positions and contact forces (steps, nodes, 3) for a (steps + 1, 3) tool path
        (and, optionally, surfaces moved to shape_pos)."""
        shapes = self.shape_pos if shape_pos is None else shape_pos
        traj = Trajectory(tool_path[:, None, :], shapes, body_rot=self.pad_rot, shape_rot=self.shape_rot)
        return self.system.rollout(traj, youngs=youngs, contact=contact)

    @staticmethod
    def normal_force(forces: torch.Tensor) -> torch.Tensor:
        """(steps,) upward force the surfaces push the pad with (N)."""
        return forces[..., 2].sum(-1)


def build_pad_rig(
    sensor: dict,
    bodies: list[dict],
    steps: int,
    step_time: float,
    tool_start,
    cells: tuple[int, int, int] = (6, 8, 2),
    mass_scale: float = 1000.0,
    damping: float = 100.0,
    friction: float = 0.3,
    contact_stiffness: float = 1e10,
) -> PadRig:
    if sensor.get("pad", "flat") != "flat":
        raise ValueError(f"tactile sensor {sensor['name']!r}: only flat pads press surfaces in the task rig")
    w, h = sensor["size"]
    thick = sensor["thickness"]
    mat = sensor["material"]
    material = FemMaterial(mat["youngs_modulus"], mat["poisson_ratio"], mat["density"], damping)
    pad = FemBodySpec(sensor["name"], flat_pad((w, h, thick), cells), material, position=tuple(tool_start), rotation=GEL_DOWN, mass_scale=mass_scale)
    rigid = [b for b in bodies if b["shape"]["kind"] in RIGID_SHAPES]
    if not rigid:
        raise ValueError("the tactile task needs at least one box, sphere, cylinder or capsule body to press on")
    # the pad's friction against the surfaces: the first surface's, as the scene gives it
    contact = ContactParams(stiffness=contact_stiffness, damping=5.0, friction=rigid[0]["material"].get("friction", friction))
    substeps = max(1, math.ceil(step_time / (0.9 * stable_dt([pad], contact))))
    system = FemSystem([pad], [shape_of(b) for b in rigid], contact, dt=step_time / substeps, substeps=substeps)
    shape_pos = torch.tensor([[b["transform"]["position"] for b in rigid]] * (steps + 1), dtype=torch.float64)
    shape_rot = np.broadcast_to(np.array([quat_to_matrix(b["transform"]["rotation"]) for b in rigid]), (steps + 1, len(rigid), 3, 3)).copy()
    pad_rot = np.broadcast_to(quat_to_matrix(GEL_DOWN), (steps + 1, 1, 3, 3)).copy()
    return PadRig(system, thick, shape_pos, shape_rot, pad_rot)
