"""What an FEM system is built from: bodies (a tet mesh, a material, a pose) and contact
parameters. SI units throughout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.fem.mesh import TetMesh


@dataclass(frozen=True)
class FemMaterial:
    youngs_modulus: float = 1.5e5  # Pa (tactile silicone gels: 0.1-1 MPa)
    poisson_ratio: float = 0.45
    density: float = 1100.0  # kg/m^3
    damping: float = 20.0  # 1/s, mass-proportional

    def __post_init__(self) -> None:
        if not self.youngs_modulus > 0 or not self.density > 0:
            raise ValueError(f"FEM material needs positive youngs_modulus and density, got {self}")
        if not -1.0 < self.poisson_ratio < 0.5:
            raise ValueError(f"FEM material poisson_ratio must lie in (-1, 0.5), got {self.poisson_ratio}")
        if self.damping < 0:
            raise ValueError(f"FEM material damping must be >= 0, got {self.damping}")


SPONGE = FemMaterial(youngs_modulus=2e4, poisson_ratio=0.1, density=60.0, damping=30.0)
SOFT_BLOCK = FemMaterial(youngs_modulus=5e4, poisson_ratio=0.4, density=1000.0, damping=10.0)


@dataclass(frozen=True)
class FemBodySpec:
    """A tet-mesh body placed at ``position``/``rotation`` (w, x, y, z). A pad's ``mesh.back``
    nodes follow the body's driven pose; a free body has none."""

    name: str
    mesh: TetMesh
    material: FemMaterial = field(default_factory=FemMaterial)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    # Mass scaling: inertia is multiplied by this, weight is not. Pads press quasi-statically,
    # so scaling lets explicit substeps of ~50 us stay stable (SimulationError says when not).
    mass_scale: float = 1.0
    # A pad glued to a kinematic collider (a gripper finger): position/rotation are then its
    # pose in that collider's frame, and its back layer follows the collider.
    mount: str | None = None
    tactile: Any = None  # sim.tactile.sensor.TactileConfig of a pad read as a tactile sensor

    def __post_init__(self) -> None:
        if not self.mass_scale >= 1.0:
            raise ValueError(f"FEM body {self.name!r}: mass_scale must be >= 1, got {self.mass_scale}")


@dataclass(frozen=True)
class ContactParams:
    """Penalty contact between FEM surface nodes and rigid shapes.

    Normal pressure ``stiffness * depth`` (Pa per m of depth, times the node's surface
    area), Hunt-Crossley damping ``(1 - damping * v_n)``, smoothed Coulomb friction."""

    stiffness: float = 2e10  # N/m^3
    damping: float = 10.0  # s/m
    friction: float = 0.5
    smoothing: float = 1e-5  # m: the force ramps in quadratically over this depth
    slip_velocity: float = 1e-3  # m/s: friction regularisation

    def __post_init__(self) -> None:
        if min(self.stiffness, self.smoothing, self.slip_velocity) <= 0 or min(self.damping, self.friction) < 0:
            raise ValueError(f"contact needs positive stiffness/smoothing/slip_velocity, >= 0 damping/friction: {self}")


# Contact of volumetric bodies (with colliders and each other): pressure per metre of depth,
# soft enough that particles (about 1 mm) stay stable at substeps of about 5e-5 s.
DEFAULT_CONTACT = ContactParams(stiffness=1e8, damping=10.0, friction=0.5)


@dataclass(frozen=True)
class ShapeSpec:
    """A rigid shape for contact (``size`` and ``sdf`` as in ``sim.spec.ColliderSpec``)."""

    shape: str
    size: tuple[float, float, float]
    sdf: Any = None  # mesh only: its baked sim.mesh_sdf.MeshSdf

    def __post_init__(self) -> None:
        from sim.spec import COLLIDER_SHAPES

        if self.shape not in COLLIDER_SHAPES:
            raise ValueError(f"shape must be one of {COLLIDER_SHAPES}, got {self.shape!r}")
        if self.shape == "mesh" and self.sdf is None:
            raise ValueError("a mesh shape needs its baked sdf grid (sim.mesh_sdf.bake)")


def quat_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
