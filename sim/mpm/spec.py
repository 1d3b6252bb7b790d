"""What an MPM system is built from: particle bodies with a material, and the grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MATERIAL_KINDS = {"elastic": 0, "plastic": 1, "fluid": 2}


@dataclass(frozen=True)
class MpmMaterial:
    """``elastic``: compressible Neo-Hookean; ``plastic``: the same with von Mises yield of
    the Kirchhoff stress at ``yield_stress`` (plasticine); ``fluid``: weakly compressible
    Newtonian fluid of ``bulk_modulus`` and dynamic ``viscosity``."""

    kind: str = "elastic"
    density: float = 1000.0  # kg/m^3
    youngs_modulus: float = 5e4  # Pa
    poisson_ratio: float = 0.3
    yield_stress: float = 2e3  # Pa (plastic)
    bulk_modulus: float = 2e5  # Pa (fluid)
    viscosity: float = 1e-3  # Pa s (fluid)

    def __post_init__(self) -> None:
        if self.kind not in MATERIAL_KINDS:
            raise ValueError(f"MPM material kind must be one of {sorted(MATERIAL_KINDS)}, got {self.kind!r}")
        for name in ("density", "youngs_modulus", "yield_stress", "bulk_modulus"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MPM material {name} must be positive, got {getattr(self, name)}")
        if not -1.0 < self.poisson_ratio < 0.5:
            raise ValueError(f"MPM material poisson_ratio must lie in (-1, 0.5), got {self.poisson_ratio}")
        if self.viscosity < 0:
            raise ValueError(f"MPM material viscosity must be >= 0, got {self.viscosity}")


@dataclass(frozen=True)
class MpmBodySpec:
    """Particles (world positions, equal volumes) of one material, with a start velocity."""

    name: str
    positions: np.ndarray  # (P, 3)
    particle_volume: float  # m^3 each
    material: MpmMaterial = field(default_factory=MpmMaterial)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    grid: "MpmGrid | None" = None  # the grid it is simulated on in a World (all bodies share one)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) == 0:
            raise ValueError(f"MPM body {self.name!r}: positions must be a non-empty (P, 3) array, got {pos.shape}")
        if not np.all(np.isfinite(pos)):
            raise ValueError(f"MPM body {self.name!r}: positions contain NaN/inf")
        if not self.particle_volume > 0:
            raise ValueError(f"MPM body {self.name!r}: particle_volume must be positive")
        object.__setattr__(self, "positions", pos)


@dataclass(frozen=True)
class MpmGrid:
    """A cubic background grid of ``resolution``^3 cells over [origin, origin + size]^3."""

    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: float = 0.1  # m
    resolution: int = 64

    def __post_init__(self) -> None:
        if not self.size > 0 or self.resolution < 8:
            raise ValueError(f"MPM grid needs size > 0 and resolution >= 8, got {self.size}, {self.resolution}")

    @property
    def dx(self) -> float:
        return self.size / self.resolution
