"""The world: systems built from a WorldSpec, stepped together, with state as numpy.

A system (shells from ``sim.shell``; FEM pads and bodies, MPM bodies and dynamic rigid bodies together from ``sim.volumetric``)
implements ``System`` below. Systems see the kinematic tools through the shared
``Colliders`` (poses at the start and end of the step, signed distances in ``sim.sdf``).
The world owns the step counter, moves the colliders along the trajectory, and checks
every system for blow-ups after each step. Where shells and FEM bodies meet, the shells
step first and each system is handed the other's positions before its turn (sim.pad_shell).

All Taichi calls must come from the thread that initialised the runtime
(``sim.runtime``); the world checks this on every public call.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from sim.runtime import RuntimeConfig, ensure_runtime
from sim.spec import WorldSpec


class System(Protocol):
    """What the world asks of a simulated system."""

    name: str

    def reset(self) -> None: ...

    def step(self, step: int) -> dict: ...  # advance one step; return solver statistics

    def get_state(self) -> dict[str, np.ndarray]: ...

    def set_state(self, state: dict[str, np.ndarray]) -> None: ...

    def check(self, step: int, max_penetration: float, max_speed: float) -> None: ...  # raise SimulationError

    def energies(self) -> dict[str, float]: ...

    def contact_count(self) -> int: ...


class World:
    def __init__(self, spec: WorldSpec, runtime_config: RuntimeConfig | None = None) -> None:
        from sim.colliders import Colliders
        from sim.pad_shell import PadShellCoupling, surfaces
        from sim.shell.system import ShellSystem
        from sim.tools import collider_poses_np

        s = spec.settings
        self.runtime = ensure_runtime(runtime_config or RuntimeConfig(backend=s.backend, precision=s.precision))
        self.runtime.check_thread()
        self._generation = self.runtime.generation
        self.spec = spec
        # shells touching FEM bodies (sim.pad_shell): the bodies' surfaces are the shells'
        # obstacles, and the fingers carrying pads let the shells through to the gel
        touching = bool(spec.shells and spec.fem_bodies)
        nodes, obstacles = surfaces(spec.fem_bodies) if touching else (None, None)
        mounts = tuple(b.mount for b in spec.fem_bodies if b.mount) if touching else ()
        self.colliders = Colliders(spec, self.runtime.real, untouched=mounts)
        self.systems: list = []
        self.shells = None
        if spec.shells:
            from sim.fem.spec import DEFAULT_CONTACT

            self.shells = ShellSystem(spec, self.colliders, self.runtime.real,
                                      obstacles=(obstacles, DEFAULT_CONTACT.friction) if touching else None)
            self.systems.append(self.shells)
        # volumetric hook (issue 4): FEM pads/soft bodies and MPM bodies, one system, see sim.volumetric
        self.volumetric = None
        if spec.fem_bodies or spec.mpm_bodies or spec.rigid_bodies:
            from sim.volumetric import VolumetricSystem

            self.volumetric = VolumetricSystem(spec, self.runtime)
            self.systems.append(self.volumetric)
        self.coupling = PadShellCoupling(self.shells, self.volumetric, nodes) if touching else None
        self._poses_of = collider_poses_np
        self.set_actions(spec.resolved_actions())
        self.reset()

    # ------------------------------------------------------------------ inputs

    def set_actions(self, actions: np.ndarray) -> None:
        """Per-step tool actions (steps, tools, 8); the colliders' poses follow."""
        self.actions = np.asarray(actions, np.float64)
        self.poses = self._poses_of(self.spec, self.actions)
        if not np.all(np.isfinite(self.poses)):
            raise ValueError("actions give non-finite collider poses (a zero quaternion?)")
        if self.volumetric is not None:  # volumetric hook: it reads the colliders' poses per step
            self.volumetric.set_poses(self.poses)

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Material and contact parameters (see ``params()`` for the keys)."""
        self._check()
        if self.shells is not None:
            self.shells.set_params(params)
        if self.volumetric is not None:  # volumetric hook
            self.volumetric.set_params(params)
        self.colliders.set_params(params["collider_friction"], params["collider_stiffness"])

    def params(self) -> dict[str, np.ndarray]:
        out = self.shells.params() if self.shells is not None else {}
        if self.volumetric is not None:  # volumetric hook
            out.update(self.volumetric.params())
        count = self.colliders.count
        out["collider_friction"] = self.colliders.friction_np.copy() if count else np.zeros(0)
        out["collider_stiffness"] = self.colliders.stiffness_np.copy() if count else np.zeros(0)
        return out

    # ------------------------------------------------------------------ stepping

    def reset(self) -> None:
        self._check()
        self.step_index = 0
        for system in self.systems:
            system.reset()

    def step(self) -> dict:
        """Advance one step; raises SimulationError (naming step, entity, quantity) on blow-up."""
        self._check()
        k = self.step_index
        if k >= self.spec.settings.steps:
            raise IndexError(f"the trajectory has {self.spec.settings.steps} steps; reset() to run again")
        self.colliders.set_poses(self.poses[k], self.poses[k + 1])
        stats = {}
        for system in self.systems:
            if self.coupling is not None:
                self.coupling.before(system)
            stats[system.name] = system.step(k)
            system.check(k, self.spec.contact.max_penetration, self.spec.settings.max_speed)
        self.step_index = k + 1
        return stats

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict:
        self._check()
        return {"step": self.step_index, **{s.name: s.get_state() for s in self.systems}}

    def set_state(self, state: dict) -> None:
        self._check()
        for system in self.systems:
            system.set_state(state[system.name])
        self.step_index = int(state["step"])

    def energies(self) -> dict[str, float]:
        self._check()
        out: dict[str, float] = {}
        for system in self.systems:
            for key, value in system.energies().items():
                out[key] = out.get(key, 0.0) + value
        return out

    def contact_count(self) -> int:
        self._check()
        k = min(self.step_index, self.spec.settings.steps)
        self.colliders.set_poses(self.poses[k], self.poses[k])
        return sum(s.contact_count() for s in self.systems)

    def _check(self) -> None:
        self.runtime.check_thread()
        if self.runtime.generation != self._generation:
            raise RuntimeError("Taichi was re-initialised since this world was built; build a new World")
