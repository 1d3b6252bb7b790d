"""The volumetric system of a World: FEM pads and soft bodies and MPM bodies, stepped
together with one substep, touching the world's kinematic colliders (sim.fem / sim.mpm)
and each other (sim.coupling: points against FEM surface triangles through a spatial
hash), with tactile readings of the pads and the adjoint of every step.

A pad whose ``mount`` names a collider (a gripper finger) follows that collider; the finger
itself is then left out of volumetric contact (the pad is its contact surface). Mesh
colliders are seen through their baked signed distance grids (sim.sdf). Rotations of colliders and pads are not differentiated: pose
gradients are for positions (and so for a gripper's opening).

Substep state (FEM, MPM, contact) lives in a ring of ``chunk + 1`` rows: a whole step's
substeps while such a ring fits ``sim.checkpoints.RING_BUDGET_BYTES`` (the backward then
recomputes a step once, not twice), else about the square root of the substeps
(sim.mpm.chunks). Where whole steps fit, the ring holds as many as fit the settings'
``tape_budget_mb`` (at most ``sim.checkpoints.TAPE_STEPS``), ``tape_steps``: a
``VolumetricRun`` forward leaves its last ``tape_steps`` steps' substeps there, and its
backward reverses those without recomputing them.

Gradients: ``VolumetricRun`` checkpoints the state every ``segment`` steps in numpy and
recomputes each segment forward during backward (memory grows with steps / segment plus one
segment), then reverses each step chunk by chunk of substeps, recomputed from the chunk's
start, through the hand-written FEM/MPM adjoints and Taichi's reverse mode of the contact
kernels.
"""


import math
from dataclasses import dataclass

import numpy as np
import taichi as ti
import torch

from sim.checkpoints import checkpoint_interval, steps_on_tape, substeps_per_chunk
from sim.coupling import SurfaceContact
from sim.errors import SimulationError
from sim.fem.solver import FemSystem, Trajectory, _set_row, stable_dt
from sim.fem.spec import DEFAULT_CONTACT, ContactParams, ShapeSpec, quat_to_matrix
from sim.mpm.chunks import reverse_substeps
from sim.mpm.solver import MpmSystem, MpmTrajectory, ring_row_bytes
from sim.mpm.spec import MpmGrid
from sim.pad_shell import sampling_level, shell_points
from sim.rigid.system import STATE_KEYS as _RIGID_KEYS, RigidSystem

_MPM_KEYS = ("mpm_x", "mpm_v", "mpm_C", "mpm_b")
PARAM_KEYS = ("fem_youngs_modulus", "fem_poisson_ratio", "mpm_youngs_modulus", "mpm_poisson_ratio",
              "mpm_yield_stress", "mpm_viscosity", "mpm_friction", "volumetric_contact", "rigid_mass", "rigid_friction")


def _mpm_limit(bodies, grid: MpmGrid, contact: ContactParams) -> float:
    """Half the CFL limit of the stiffest MPM material and of the contact springs on particles."""
    limits = []
    for b in bodies:
        m = b.material
        if m.kind == "fluid":
            modulus = m.bulk_modulus
        else:
            mu = m.youngs_modulus / (2 * (1 + m.poisson_ratio))
            modulus = m.youngs_modulus * m.poisson_ratio / ((1 + m.poisson_ratio) * (1 - 2 * m.poisson_ratio)) + 2 * mu
        limits.append(0.3 * grid.dx / math.sqrt(modulus / m.density))
        size = b.particle_volume ** (1 / 3)
        limits.append(0.5 / math.sqrt(contact.stiffness / (m.density * size)))
    return min(limits)


@ti.data_oriented
class VolumetricSystem:
    name = "volumetric"

    def __init__(self, spec, runtime, contact: ContactParams = DEFAULT_CONTACT, max_pairs: int | None = None):
        self.spec, self.runtime, self.contact_params = spec, runtime, contact
        fem_specs, mpm_specs, rigid_specs = list(spec.fem_bodies), list(spec.mpm_bodies), list(spec.rigid_bodies)
        names = {c.name: i for i, c in enumerate(spec.colliders)}
        for b in fem_specs:
            if b.mount is not None and b.mount not in names:
                raise ValueError(f"FEM body {b.name!r} is mounted on unknown collider {b.mount!r}")
        mounts = {b.mount for b in fem_specs if b.mount}
        # colliders the volumetric bodies touch: primitives not carrying a pad
        self.shape_cols = [i for i, c in enumerate(spec.colliders) if c.name not in mounts]
        shapes = [ShapeSpec(spec.colliders[i].shape, spec.colliders[i].size, spec.colliders[i].sdf) for i in self.shape_cols]
        grids = {b.grid for b in mpm_specs}
        if len(grids) > 1:
            raise ValueError("every MPM body of a world must name the same grid")
        grid = next(iter(grids)) if mpm_specs else None
        if mpm_specs and grid is None:
            raise ValueError(f"MPM body {mpm_specs[0].name!r} has no grid")

        s = spec.settings
        limits = []
        # points on the shells, kinematic within a step (sim.pad_shell), touch the FEM bodies
        self.shell_points = None
        if fem_specs and spec.shells:
            level = sampling_level(spec.shells, lambda area: stable_dt(fem_specs, contact, area))
            self.shell_points = shell_points(spec.shells, level)
        if fem_specs:
            shell_area = self.shell_points["area"].max() if self.shell_points is not None else 0.0
            limits.append(stable_dt(fem_specs, contact, shell_area))
        if mpm_specs:
            limits.append(_mpm_limit(mpm_specs, grid, contact))
        if rigid_specs:
            limits.append(RigidSystem.stable_dt(rigid_specs, contact.stiffness))
        self.substeps = max(1, math.ceil(s.dt / min(limits) * (1 + 1e-9)))
        self.dt = s.dt / self.substeps
        row_bytes = self._row_bytes(spec, runtime)
        self.chunk = substeps_per_chunk(self.substeps, row_bytes)  # substeps a backward recomputes together
        # (a world with shells is differentiated by sim.rollout, which recomputes every step)
        self.tape_steps = (steps_on_tape(self.substeps, row_bytes, s.tape_budget_mb)
                           if self.chunk == self.substeps and not spec.shells else 0)
        self.slots = max(self.chunk + 1, self.tape_steps * self.substeps + 1)
        self.row0 = 0  # the ring row of the current step's start (p x substeps at tape position p)
        self._recording = None  # the first step a VolumetricRun's forward keeps on the tape, while it runs
        self._taped: dict[int, int] = {}  # step -> tape position, of the run self._tape_run
        self._tape_run = None
        gravity = tuple(s.gravity)
        self.fem = FemSystem(fem_specs, shapes, contact, self.dt, self.substeps, gravity, slots=self.slots) if fem_specs else None
        self.mpm = (MpmSystem(mpm_specs, grid, shapes, contact.friction, self.dt, self.substeps, gravity, substep_chunk=self.chunk,
                              slots=self.slots) if mpm_specs else None)
        self.rigid = (RigidSystem(rigid_specs, shapes, self.dt, self.substeps, gravity, self.slots, runtime.real, contact)
                      if rigid_specs else None)
        self.fem_bodies, self.mpm_bodies, self.rigid_bodies = fem_specs, mpm_specs, rigid_specs
        self.n_rigid = len(rigid_specs)
        self.n_fem_nodes = self.fem.n_nodes if self.fem is not None else 0
        self.n_particles = self.mpm.n if self.mpm is not None else 0
        self.mount_col = [names.get(b.mount, -1) if b.mount else -1 for b in fem_specs]
        self._build_contact(max_pairs)
        self._build_sensors()
        self.poses = None

    # --- construction ---------------------------------------------------------------
    @staticmethod
    def _row_bytes(spec, runtime) -> int:
        """About the bytes of one ring row with adjoints: FEM nodes (x, v and two forces),
        MPM particles and their grid tape (sim.mpm.solver.ring_row_bytes), contact points
        (position, velocity, force) and their candidate pairs (8 per point, two ints each)."""
        nodes = sum(len(b.mesh.nodes) for b in spec.fem_bodies)
        particles = sum(len(b.positions) for b in spec.mpm_bodies)
        points = sum(len(b.mesh.surface_nodes) for b in spec.fem_bodies) + particles + sum(len(s.vertices) for s in spec.shells)
        real = np.dtype(runtime.np_real).itemsize
        mpm = ring_row_bytes(spec.mpm_bodies, spec.mpm_bodies[0].grid, real) if spec.mpm_bodies else 0
        return 2 * real * (12 * nodes + 9 * points) + mpm + 64 * points

    def _build_contact(self, max_pairs) -> None:
        fem, mpm, real = self.fem, self.mpm, self.runtime.real
        tris, tri_body, body, area, radius = [np.zeros((0, 3), np.int32)], [np.zeros(0, np.int32)], [], [], []
        mass = []
        edge = 0.0
        if fem is not None:
            for b, spec in enumerate(self.fem_bodies):
                faces = spec.mesh.surface_faces + fem.offsets[b]
                tris.append(faces)
                tri_body.append(np.full(len(faces), b, np.int32))
                p = fem.rest_np[faces]
                edge = max(edge, np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).max())
            body.append(fem.body_of_np[fem.contact_nodes_np])
            area.append(fem.area_np[fem.contact_nodes_np])
            radius.append(np.zeros(len(fem.contact_nodes_np)))
            mass.append(fem.mass_np[fem.contact_nodes_np])
        self.n_fem_points = sum(len(b) for b in body)
        if mpm is not None:
            nb = len(self.fem_bodies)
            body.append(nb + mpm.body_of_np)
            vols = np.array([b.particle_volume for b in self.mpm_bodies])[mpm.body_of_np]
            area.append(vols ** (2 / 3))
            radius.append(np.full(mpm.n, 0.25 * mpm.dx))
            mass.append(mpm.mass_np)
        self.n_shell_points = 0
        if self.shell_points is not None:
            sp = self.shell_points
            self.n_shell_points = len(sp["x"])
            body.append(len(self.fem_bodies) + len(self.mpm_bodies) + sp["shell"])
            area.append(sp["area"])
            radius.append(sp["radius"])
            mass.append(sp["mass"])
        radius_all = np.concatenate(radius) if radius else np.zeros(0)
        cell = edge + 2 * (radius_all.max() if len(radius_all) else 0.0) + 1e-6
        # a lone FEM body has no other body's points to touch (rigid bodies have their own contact)
        self.coupled = fem is not None and len(np.concatenate(tris)) > 0 and (
            len(self.fem_bodies) > 1 or mpm is not None or self.n_shell_points > 0)
        self.contact = SurfaceContact(
            np.concatenate(tris), np.concatenate(tri_body), np.concatenate(body) if body else np.zeros(0, np.int32),
            np.concatenate(area) if area else np.zeros(0), radius_all, self.slots, real, cell,
            depth=1e-3, smoothing=self.contact_params.smoothing, slip_velocity=self.contact_params.slip_velocity,
            max_pairs=max_pairs, point_mass=np.concatenate(mass) if mass else None,
            node_mass=fem.mass_np if fem is not None else None, dt=self.dt)
        if fem is not None:
            self.fem_points = ti.field(ti.i32, max(self.n_fem_points, 1))
            if self.n_fem_points:
                self.fem_points.from_numpy(fem.contact_nodes_np.astype(np.int32))
        self.shell_offset = self.n_fem_points + (mpm.n if mpm is not None else 0)
        n = max(self.n_shell_points, 1)
        self.shell_x0, self.shell_x1 = (ti.Vector.field(3, real, n, needs_grad=True) for _ in range(2))
        if self.n_shell_points:
            self._write_shell_points(self.shell_points["x"], self.shell_points["x"])

    def _build_sensors(self) -> None:
        from sim.tactile.sensor import TactileSensor

        self.sensors = {}
        for b, spec in enumerate(self.fem_bodies):
            if spec.tactile is not None:
                self.sensors[spec.name] = (b, TactileSensor(spec.mesh, spec.tactile))

    # --- world interface ---------------------------------------------------------------
    def set_poses(self, poses: np.ndarray) -> None:
        """Every collider's pose (steps + 1, colliders, 7) along the trajectory."""
        self.poses = np.asarray(poses, np.float64)

    def set_shell_points(self, start: np.ndarray, end: np.ndarray) -> None:
        """The shells' vertex positions at the coming step's start and end (sim.pad_shell),
        which place their contact points."""
        w = self.shell_points["weights"]
        self._write_shell_points(w @ start, w @ end)

    def _write_shell_points(self, start: np.ndarray, end: np.ndarray) -> None:
        self.shell_x0.from_numpy(np.ascontiguousarray(start, self.runtime.np_real))
        self.shell_x1.from_numpy(np.ascontiguousarray(end, self.runtime.np_real))

    def shell_point_grads(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradients w.r.t. the shells' vertex positions at the step's start and end, from the
        last ``backward_step``."""
        n, wt = self.n_shell_points, self.shell_points["weights"].T
        return (wt @ self.shell_x0.grad.to_numpy()[:n].astype(np.float64),
                wt @ self.shell_x1.grad.to_numpy()[:n].astype(np.float64))

    def _step_poses(self, k: int):
        """Collider positions/rotations for step k -> k+1 and the FEM bodies' driven poses."""
        rows = self.poses[k:k + 2]
        rot = np.array([[quat_to_matrix(q) for q in row[:, 3:]] for row in rows]).reshape(2, -1, 3, 3)
        sp, sR = rows[:, self.shape_cols, :3], rot[:, self.shape_cols]
        bp, bR = [], []
        for b, spec in enumerate(self.fem_bodies):
            R0, p0 = quat_to_matrix(spec.rotation), np.asarray(spec.position, np.float64)
            c = self.mount_col[b]
            if c < 0:
                bp.append(np.broadcast_to(p0, (2, 3)))
                bR.append(np.broadcast_to(R0, (2, 3, 3)))
            else:
                bp.append(rows[:, c, :3] + np.einsum("tij,j->ti", rot[:, c], p0))
                bR.append(rot[:, c] @ R0)
        bp = np.stack(bp, 1) if bp else np.zeros((2, 0, 3))
        bR = np.stack(bR, 1) if bR else np.zeros((2, 0, 3, 3))
        return bp, bR, sp, sR

    def _initial_fem_x(self) -> np.ndarray:
        bp, bR, _, _ = self._step_poses(0)
        return self.fem.place(bp[0], bR[0])

    def reset(self) -> None:
        state = {}
        if self.fem is not None:
            state["fem_x"], state["fem_v"] = self._initial_fem_x(), np.zeros((self.fem.n_nodes, 3))
        if self.mpm is not None:
            x, v, C, b = self.mpm.initial_state()
            state.update(mpm_x=x, mpm_v=v, mpm_C=C, mpm_b=b)
        if self.rigid is not None:
            state.update(self.rigid.initial_state())
        self.state = state

    def get_state(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.state.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.state = {k: np.array(v, np.float64) for k, v in state.items()}

    def set_params(self, params: dict) -> None:
        fem, mpm = self.fem, self.mpm
        c = params.get("volumetric_contact")
        if fem is not None:
            fem.set_params(params.get("fem_youngs_modulus"), params.get("fem_poisson_ratio"), c)
        if mpm is not None:
            friction = params.get("mpm_friction")
            mpm.set_params(params.get("mpm_youngs_modulus"), params.get("mpm_poisson_ratio"), params.get("mpm_yield_stress"),
                           params.get("mpm_viscosity"), None if friction is None else float(np.asarray(friction).ravel()[0]))
        if self.rigid is not None:
            self.rigid.set_params(params.get("rigid_mass"), params.get("rigid_friction"), c if fem is None else None)

    def params(self) -> dict[str, np.ndarray]:
        out = {}
        fem, mpm = self.fem, self.mpm
        if fem is not None:
            out["fem_youngs_modulus"] = fem.E.to_numpy().astype(np.float64)
            out["fem_poisson_ratio"] = fem.nu.to_numpy().astype(np.float64)
            out["volumetric_contact"] = np.array([fem.kn[None], fem.kd[None], fem.mu[None]], np.float64)
        if mpm is not None:
            out["mpm_youngs_modulus"] = mpm.E.to_numpy().astype(np.float64)
            out["mpm_poisson_ratio"] = mpm.nu.to_numpy().astype(np.float64)
            out["mpm_yield_stress"] = mpm.yield_stress.to_numpy().astype(np.float64)
            out["mpm_viscosity"] = mpm.viscosity.to_numpy().astype(np.float64)
            out["mpm_friction"] = np.array([mpm.friction[None]], np.float64)
        if self.rigid is not None:
            out["rigid_mass"] = self.rigid.mass.to_numpy().astype(np.float64)
            out["rigid_friction"] = self.rigid.friction.to_numpy().astype(np.float64)
            out["volumetric_contact"] = np.array([f[None] for f in self._contact_fields()], np.float64)
        return out

    def _contact_fields(self):
        """The volumetric contact's (stiffness, damping, friction) fields: the FEM system's,
        or the rigid system's in a world without FEM bodies."""
        owner = self.fem if self.fem is not None else self.rigid
        return owner.kn, owner.kd, owner.mu

    # --- kernels joining the systems -------------------------------------------------
    # one kernel for every kind of contact point (and its reverse): each launch costs tens of us
    @ti.kernel
    def _gather(self, s: ti.i32, t: ti.f64, step_dt: ti.f64):
        """The contact points of row s: FEM surface nodes, particles, and the shell points at
        fraction t of the step, moving straight from start to end."""
        if ti.static(self.n_fem_points > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for j in range(self.n_fem_points):
                self.contact.px[s, j] = self.fem.x[s, self.fem_points[j]]
                self.contact.pv[s, j] = self.fem.v[s, self.fem_points[j]]
        if ti.static(self.n_particles > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for p in range(self.mpm.n):
                self.contact.px[s, self.n_fem_points + p] = self.mpm.x[s, p]
                self.contact.pv[s, self.n_fem_points + p] = self.mpm.v[s, p]
        if ti.static(self.n_shell_points > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for j in range(self.n_shell_points):
                a, b = self.shell_x0[j], self.shell_x1[j]
                self.contact.px[s, self.shell_offset + j] = a + t * (b - a)
                self.contact.pv[s, self.shell_offset + j] = (b - a) / step_dt

    @ti.kernel
    def _scatter(self, s: ti.i32):
        """The contact forces of row s onto the FEM nodes and particles."""
        if ti.static(self.n_fem_points > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for j in range(self.n_fem_points):
                self.fem.fc[s, self.fem_points[j]] += self.contact.pf[s, j]
        if ti.static(self.n_particles > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for p in range(self.mpm.n):
                self.mpm.fext[s, p] = self.contact.pf[s, self.n_fem_points + p]

    @ti.kernel
    def _clear_forces(self, s: ti.i32):
        """Zero the forces accumulated in ring row s (it holds an earlier substep's)."""
        if ti.static(self.n_fem_nodes > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for i in range(self.fem.n_nodes):
                self.fem.fe[s, i] = ti.Vector([0.0, 0.0, 0.0])
                self.fem.fc[s, i] = ti.Vector([0.0, 0.0, 0.0])
        if ti.static(self.coupled):
            ti.loop_config(serialize=self.contact.serial_loops)
            for p in range(self.contact.n_points):
                self.contact.pf[s, p] = ti.Vector([0.0, 0.0, 0.0])
        if ti.static(self.n_rigid > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for b in range(self.rigid.n_bodies):
                self.rigid.force[s, b] = ti.Vector([0.0, 0.0, 0.0])
                self.rigid.torque[s, b] = ti.Vector([0.0, 0.0, 0.0])

    # --- stepping (the substep protocol of sim.mpm.chunks) ------------------------------
    def slot(self, s: int) -> int:
        """The ring row holding the state before substep s of the current step."""
        return self.row0 + s % self.slots

    def _start(self, k: int, state: dict | None, row0: int = 0) -> None:
        """Load step k: the colliders' and pads' substep poses, and its start state (None:
        already there, on a tape) into row ``row0``, where its substeps begin."""
        fem, mpm = self.fem, self.mpm
        self.row0 = row0
        self.contact.invalidate()
        bp, bR, sp, sR = self._step_poses(k)
        if fem is not None:
            traj = Trajectory(torch.from_numpy(bp), torch.from_numpy(sp), bR, sR)
            bps, bRs, sps, sRs = fem._segments(traj)
            fem._load_poses(bps[0], bRs[0], sps[0], sRs[0])
        if mpm is not None:
            sps, sRs = mpm._poses(MpmTrajectory(torch.from_numpy(sp), sR), 1)
            mpm._load_poses((sps[0], np.ascontiguousarray(sRs[0])))
            mpm.row0 = row0
        if self.rigid is not None:
            from sim.fem.solver import _substep_rotations

            w = np.linspace(0.0, 1.0, self.substeps + 1)[:, None, None]
            self.rigid.load_poses(sp[0] * (1 - w) + sp[1] * w, _substep_rotations(sR, self.substeps)[0])
        if state is not None:
            self.load_slot(row0, state)

    def substep(self, s: int) -> None:
        fem, mpm, i, o = self.fem, self.mpm, self.slot(s), self.slot(s + 1)
        self._clear_forces(i)
        if fem is not None:
            fem.elastic(i)
            fem.contact(i, s)
        if mpm is not None:
            mpm.constitutive(i, o)
        if self.coupled:
            self._gather(i, s / self.substeps, self.dt * self.substeps)
            self.contact.find_pairs(i, fem.x)
            self.contact.forces(i, fem.x, fem.v, fem.fc, fem.kn, fem.kd, fem.mu)
            self._scatter(i)
        if self.rigid is not None:
            self._rigid_contact(i, s)
        if fem is not None:
            fem.update(i, o, s)
        if mpm is not None:
            mpm.transfer(s)
        if self.rigid is not None:
            self.rigid.update(i, o)

    def _rigid_contact(self, i: int, s: int, adjoint: bool = False) -> None:
        """The rigid bodies' contact forces in row i (substep s), or their adjoint."""
        rigid, fem = self.rigid, self.fem
        kn, kd, mu = self._contact_fields()
        if fem is not None:
            pad = rigid.pad_contact.grad if adjoint else rigid.pad_contact
            pad(i, fem.n_contact, fem.cn, fem.area, fem.mass, fem.x, fem.v, fem.fc, kn, kd, mu)
        (rigid.collider_contact.grad if adjoint else rigid.collider_contact)(i, s, kn, kd)

    def reverse_substep(self, s: int) -> None:
        fem, mpm, i, o = self.fem, self.mpm, self.slot(s), self.slot(s + 1)
        if self.rigid is not None:
            self.rigid.update.grad(i, o)
        if mpm is not None:
            mpm.reverse_substep(s)
        if fem is not None:
            fem.update.grad(i, o, s)
        if self.rigid is not None:
            self._rigid_contact(i, s, adjoint=True)
        if self.coupled:
            self._scatter.grad(i)
            self.contact.forces.grad(i, fem.x, fem.v, fem.fc, fem.kn, fem.kd, fem.mu)
            self._gather.grad(i, s / self.substeps, self.dt * self.substeps)
        if fem is not None:
            fem.contact.grad(i, s)
            fem.elastic_adjoint(i)

    def save_slot(self, r: int) -> dict:
        out = {}
        if self.fem is not None:
            out["fem_x"], out["fem_v"] = self.fem._row(self.fem.x, r), self.fem._row(self.fem.v, r)
        if self.mpm is not None:
            out.update(zip(_MPM_KEYS, self.mpm.save_slot(r)))
        if self.rigid is not None:
            out.update(self.rigid.save_slot(r))
        return out

    def read_adjoint(self, r: int) -> dict:
        out = {}
        if self.fem is not None:
            out["fem_x"], out["fem_v"] = self.fem._row(self.fem.x.grad, r), self.fem._row(self.fem.v.grad, r)
        if self.mpm is not None:
            out.update(zip(_MPM_KEYS, self.mpm.read_adjoint(r)))
        if self.rigid is not None:
            out.update(self.rigid.save_slot(r, grad=True))
        return out

    def _fem_rows(self, r: int, x, v, values: dict) -> None:
        npr = self.runtime.np_real
        _set_row(x, r, np.ascontiguousarray(values["fem_x"], npr))
        _set_row(v, r, np.ascontiguousarray(values["fem_v"], npr))

    def load_slot(self, r: int, state: dict) -> None:
        self.contact.invalidate()
        if self.fem is not None:
            self._fem_rows(r, self.fem.x, self.fem.v, state)
        if self.mpm is not None:
            self.mpm.load_slot(r, [state[key] for key in _MPM_KEYS])
        if self.rigid is not None:
            self.rigid.load_slot(r, state)

    def load_adjoint(self, r: int, adj: dict) -> None:
        if self.fem is not None:
            self._fem_rows(r, self.fem.x.grad, self.fem.v.grad, adj)
        if self.mpm is not None:
            self.mpm.load_adjoint(r, [adj[key] for key in _MPM_KEYS])
        if self.rigid is not None:
            self.rigid.load_slot(r, adj, grad=True)

    @ti.kernel
    def _clear_row_grads(self, first: ti.i32, last: ti.i32):
        """Zero the FEM and contact state adjoints of ring rows first..last - 1."""
        if ti.static(self.n_fem_nodes > 0):
            ti.loop_config(serialize=self.contact.serial_loops)
            for r, i in ti.ndrange((first, last), self.fem.n_nodes):
                for f in ti.static((self.fem.x, self.fem.v, self.fem.fe, self.fem.fc)):
                    f.grad[r, i] = ti.Vector([0.0, 0.0, 0.0])
        ti.loop_config(serialize=self.contact.serial_loops)
        for r, p in ti.ndrange((first, last), self.contact.n_points):
            for f in ti.static((self.contact.px, self.contact.pv, self.contact.pf)):
                f.grad[r, p] = ti.Vector([0.0, 0.0, 0.0])

    def clear_state_grads(self) -> None:
        """Zero the state adjoints of the current step's rows (on a tape, only those: the
        tape's other rows are another step's)."""
        self._clear_row_grads(self.slot(0), min(self.slot(0) + self.substeps + 1, self.slots))
        if self.mpm is not None:
            self.mpm.clear_state_grads()
        if self.rigid is not None:
            self.rigid.clear_state_grads()

    def record_tape(self, run, steps: int) -> None:
        """Keep the substeps of the last ``tape_steps`` of the next ``steps`` steps (``run``'s
        forward, from step 0) on the ring for ``run``'s backward, until ``stop_recording``."""
        self._taped.clear()
        self._tape_run = run
        self._recording = max(0, steps - self.tape_steps) if self.tape_steps else None

    def stop_recording(self) -> None:
        self._recording = None

    def _rows_of(self, k: int) -> int:
        """The row where step k's substeps begin: its tape position's while a forward is
        recorded, else row 0 (whose steps overwrite the tape's first rows: it is dropped)."""
        if self._recording is not None and k >= self._recording:
            self._taped[k] = k - self._recording
            return self._taped[k] * self.substeps
        self._taped.clear()
        return 0

    def advance(self, k: int, state: dict) -> dict:
        self._start(k, state, self._rows_of(k))
        for s in range(self.substeps):
            self.substep(s)
        return self.save_slot(self.slot(self.substeps))

    def step(self, step: int) -> dict:
        if self.poses is None:
            raise RuntimeError("the volumetric system has no collider poses; World.set_actions gives them")
        self.state = self.advance(step, self.state)
        return {"substeps": self.substeps, "pairs": self.pairs()}

    def pairs(self) -> int:
        """Candidate contact pairs of the last substep of the last step."""
        return int(self.contact.n_pairs[self.slot(self.substeps - 1)])

    def check(self, step: int, max_penetration: float, max_speed: float) -> None:
        groups = []
        if self.fem is not None:
            groups.append((self.state["fem_x"], self.state["fem_v"], self.fem.body_of_np, self.fem_bodies))
        if self.mpm is not None:
            groups.append((self.state["mpm_x"], self.state["mpm_v"], self.mpm.body_of_np, self.mpm_bodies))
        for x, v, body_of, specs in groups:
            bad = ~np.all(np.isfinite(x) & np.isfinite(v), axis=1)
            if bad.any():
                raise SimulationError(step, specs[body_of[np.argmax(bad)]].name, "position", float("nan"), "NaN/inf state")
            speed = np.linalg.norm(v, axis=1)
            if speed.max() > max_speed:
                i = int(np.argmax(speed))
                raise SimulationError(step, specs[body_of[i]].name, "speed", float(speed[i]),
                                      f"{speed[i]:.3g} m/s exceeds {max_speed} m/s")
        if self.rigid is not None:
            fast = np.linalg.norm(self.state["rigid_v"], axis=1)
            bad = ~np.all(np.isfinite(np.hstack([self.state[k] for k in _RIGID_KEYS])), axis=1)
            if bad.any():
                raise SimulationError(step, self.rigid_bodies[int(np.argmax(bad))].name, "pose", float("nan"), "NaN/inf state")
            if fast.max() > max_speed:
                i = int(np.argmax(fast))
                raise SimulationError(step, self.rigid_bodies[i].name, "speed", float(fast[i]),
                                      f"{fast[i]:.3g} m/s exceeds {max_speed} m/s")
        if self.mpm is not None:
            g = self.mpm.grid
            lo, hi = np.asarray(g.origin) + 2 * g.dx, np.asarray(g.origin) + g.size - 2 * g.dx
            out = np.any((self.state["mpm_x"] < lo) | (self.state["mpm_x"] > hi), axis=1)
            if out.any():
                name = self.mpm_bodies[self.mpm.body_of_np[np.argmax(out)]].name
                raise SimulationError(step, name, "position", 0.0, "particles left the MPM grid")

    def energies(self) -> dict[str, float]:
        out = {}
        if self.fem is not None:
            out["kinetic"] = 0.5 * float(np.sum(self.fem.mass_np[:, None] * self.state["fem_v"] ** 2))
        if self.mpm is not None:
            out["kinetic"] = out.get("kinetic", 0.0) + 0.5 * float(np.sum(self.mpm.mass_np[:, None] * self.state["mpm_v"] ** 2))
        if self.rigid is not None:
            out["kinetic"] = out.get("kinetic", 0.0) + self.rigid.kinetic_energy(self.state)
        return out

    def contact_count(self) -> int:
        """Points in contact during the last substep (FEM nodes on colliders or surfaces,
        particles on pads)."""
        n = 0
        if self.fem is not None:
            n += int(np.count_nonzero(np.any(self.node_forces() != 0, axis=1)))
        if self.mpm is not None:
            f = self.mpm.fext.to_numpy()[self.slot(self.substeps - 1)]
            n += int(np.count_nonzero(np.any(f != 0, axis=1)))
        if self.rigid is not None:  # bodies touching anything
            f = self.rigid.force.to_numpy()[self.slot(self.substeps - 1)]
            n += int(np.count_nonzero(np.any(f != 0, axis=1)))
        return n

    # --- readings ----------------------------------------------------------------------
    def node_forces(self) -> np.ndarray:
        """Contact force on every FEM node during the last substep of the last step (N)."""
        return self.fem._row(self.fem.fc, self.slot(self.substeps - 1))

    def pad_pose(self, b: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        bp, bR, _, _ = self._step_poses(min(k, len(self.poses) - 2))
        row = 0 if k < len(self.poses) - 1 else 1
        return bR[row, b], bp[row, b]

    def tactile(self, k: int) -> dict:
        """Every sensor pad's readings (sim.tactile.sensor.TactileFrame) at step k."""
        out = {}
        forces = self.node_forces() if self.sensors else None
        for name, (b, sensor) in self.sensors.items():
            sl = slice(self.fem.offsets[b], self.fem.offsets[b + 1])
            R, p = self.pad_pose(b, k)
            with torch.no_grad():
                out[name] = sensor.read(torch.from_numpy(self.state["fem_x"][sl]), torch.from_numpy(forces[sl]), R,
                                        torch.from_numpy(p))
        return out

    # --- adjoint -----------------------------------------------------------------------
    def clear_param_grads(self) -> None:
        if self.fem is not None:
            for f in (self.fem.E, self.fem.nu, self.fem.kn, self.fem.kd, self.fem.mu):
                f.grad.fill(0)
        if self.mpm is not None:
            self.mpm.clear_param_grads()
        if self.rigid is not None:
            self.rigid.clear_param_grads()

    def param_grads(self) -> dict[str, np.ndarray]:
        out = {}
        fem, mpm = self.fem, self.mpm
        if fem is not None:
            out["fem_youngs_modulus"] = fem.E.grad.to_numpy().astype(np.float64)
            out["fem_poisson_ratio"] = fem.nu.grad.to_numpy().astype(np.float64)
            out["volumetric_contact"] = np.array([fem.kn.grad[None], fem.kd.grad[None], fem.mu.grad[None]], np.float64)
        if mpm is not None:
            out["mpm_youngs_modulus"] = mpm.E.grad.to_numpy().astype(np.float64)
            out["mpm_poisson_ratio"] = mpm.nu.grad.to_numpy().astype(np.float64)
            out["mpm_yield_stress"] = mpm.yield_stress.grad.to_numpy().astype(np.float64)
            out["mpm_viscosity"] = mpm.viscosity.grad.to_numpy().astype(np.float64)
            out["mpm_friction"] = np.array([mpm.friction.grad[None]], np.float64)
        if self.rigid is not None:
            out["rigid_mass"] = self.rigid.mass.grad.to_numpy().astype(np.float64)
            out["rigid_friction"] = self.rigid.friction.grad.to_numpy().astype(np.float64)
            out["volumetric_contact"] = np.array([f.grad[None] for f in self._contact_fields()], np.float64)
        return out

    def backward_step(self, k: int, state: dict, adj: dict, chunk: int | None = None, run=None) -> tuple[dict, np.ndarray]:
        """Adjoint of step k from its start state: the gradient w.r.t. the start state from
        ``adj`` (w.r.t. the end state), and w.r.t. the colliders' positions (2, colliders, 3)
        at the step's start and end. Material/contact gradients accumulate (see
        ``param_grads``). ``chunk``: substeps recomputed together (at most ``self.chunk``).
        ``run``: the recorded run (``record_tape``) the step belongs to, whose tape may
        still hold its substeps (then they are not recomputed).
        Shell points (sim.pad_shell) must sit where the forward step had them
        (``set_shell_points``); their gradients are then in ``shell_point_grads()``."""
        fem, mpm, S = self.fem, self.mpm, self.substeps
        position = self._taped.get(k) if run is not None and run is self._tape_run else None
        if position is None:
            self._taped.clear()
            self._start(k, state)
        else:
            self._start(k, None, position * S)
        pose_fields = ([fem.body_p, fem.shape_p] if fem is not None else []) + ([mpm.shape_p] if mpm is not None else [])
        pose_fields += [self.rigid.shape_p] if self.rigid is not None else []
        for f in pose_fields + [self.shell_x0, self.shell_x1]:
            f.grad.fill(0)
        out = reverse_substeps(self, S, chunk or self.chunk, adj, recorded=position is not None)
        g_pos = np.zeros((2, self.poses.shape[1], 3))
        w = np.linspace(0.0, 1.0, S + 1)[:, None]

        def add(c, g):  # g: (S + 1, 3) w.r.t. the substep poses, interpolated from the step's ends
            g_pos[0, c] += ((1 - w) * g).sum(0)
            g_pos[1, c] += (w * g).sum(0)

        if fem is not None:
            gb = fem.body_p.grad.to_numpy().astype(np.float64)
            for b, c in enumerate(self.mount_col):
                if c >= 0:  # body position = collider position + R offset: same gradient
                    add(c, gb[:, b])
        for f in pose_fields:
            if fem is None or f is not fem.body_p:
                gs = f.grad.to_numpy().astype(np.float64)
                for i, c in enumerate(self.shape_cols):
                    add(c, gs[:, i])
        return out, g_pos


@dataclass
class VolumetricGradients:
    params: dict[str, np.ndarray]
    positions: np.ndarray  # (steps + 1, colliders, 3): w.r.t. collider positions
    actions: np.ndarray  # (steps, tools, 8): through the colliders' positions only
    initial: dict[str, np.ndarray]  # w.r.t. the initial volumetric state


class VolumetricRun:
    """A checkpointed run of a world's volumetric system (the world must have no shells:
    sim.rollout differentiates those, with the FEM bodies they touch)."""

    def __init__(self, world, segment: int | None = None, on_step=None, chunk: int | None = None,
                 initial: dict[str, np.ndarray] | None = None, record: tuple[str, ...] = ()) -> None:
        """segment: steps between checkpoints (default every step while the states fit the
        settings' checkpoint budget, else about the square root of the steps, sim.checkpoints);
        chunk: substeps its backward recomputes together (default the system's); initial:
        the volumetric state to start from (default the spec's); record: state keys kept
        after every step in ``self.states`` (steps, ...), for losses on the whole path."""
        if world.volumetric is None:
            raise ValueError("this world has no FEM or MPM bodies")
        if world.shells is not None:
            raise ValueError("this world has shells: differentiate it with sim.rollout (which takes the volumetric "
                             "bodies along where the shells touch FEM bodies)")
        self.world = world
        steps = world.spec.settings.steps
        self.chunk = chunk
        self.checkpoints: dict[int, dict] = {}
        world.reset()
        if initial is not None:
            world.volumetric.set_state(initial)
        state_bytes = sum(a.nbytes for a in world.volumetric.state.values())
        self.segment = segment or checkpoint_interval(steps, state_bytes, world.spec.settings.checkpoint_budget_mb)
        unknown = sorted(set(record) - set(world.volumetric.state))
        if unknown:
            raise ValueError(f"cannot record {unknown}: the state holds {sorted(world.volumetric.state)}")
        rows: dict[str, list] = {key: [] for key in record}
        if self.segment == 1:  # (a segment's backward recomputes its states with advance, overwriting the tape)
            world.volumetric.record_tape(self, steps)
        try:
            for k in range(steps):
                if k % self.segment == 0:
                    self.checkpoints[k] = world.volumetric.get_state()
                world.step()
                for key, row in rows.items():
                    row.append(world.volumetric.state[key].copy())
                if on_step is not None:
                    on_step(k)
        finally:
            world.volumetric.stop_recording()
        self.states = {key: np.stack(row) for key, row in rows.items()}
        self.final = world.volumetric.get_state()

    def memory_bytes(self) -> int:
        return sum(a.nbytes for cp in self.checkpoints.values() for a in cp.values())

    def backward(self, grad_final: dict[str, np.ndarray], grad_steps: dict[str, np.ndarray] | None = None) -> VolumetricGradients:
        """Gradients from the loss's gradient w.r.t. the final state and, optionally, w.r.t.
        the state after every step (``grad_steps``: key -> (steps, ...), as ``states``)."""
        world, system = self.world, self.world.volumetric
        steps = world.spec.settings.steps
        grad_steps = {k: np.asarray(g, np.float64) for k, g in (grad_steps or {}).items()}
        for key, g in grad_steps.items():
            if key not in self.final:
                raise ValueError(f"no state {key!r} to take a gradient of; the state holds {sorted(self.final)}")
            if g.shape != (steps, *self.final[key].shape):
                raise ValueError(f"the gradient w.r.t. every step's {key!r} has shape {g.shape}, "
                                 f"not {(steps, *self.final[key].shape)}")
        adj = {k: np.asarray(grad_final.get(k, np.zeros_like(v)), np.float64) for k, v in self.final.items()}
        pos = np.zeros((steps + 1, system.poses.shape[1], 3))
        system.clear_param_grads()
        for start in sorted(self.checkpoints, reverse=True):
            end = min(start + self.segment, steps)
            states = [self.checkpoints[start]]
            for k in range(start, end - 1):
                states.append(system.advance(k, states[-1]))
            for k in range(end - 1, start - 1, -1):
                for key, g in grad_steps.items():  # the state after step k enters the loss too
                    adj[key] = adj[key] + g[k]
                adj, g = system.backward_step(k, states[k - start], adj, self.chunk, run=self)
                pos[k:k + 2] += g
        params = system.param_grads()
        system.state = self.final
        from sim.tools import action_gradient

        actions = action_gradient(world.spec, world.actions, pos) if world.spec.tools else np.zeros_like(world.actions)
        return VolumetricGradients(params, pos, actions, adj)


VOLUMETRIC_KINDS = ("actions", "fem_youngs_modulus", "fem_poisson_ratio", "mpm_youngs_modulus", "mpm_poisson_ratio",
                    "mpm_yield_stress", "mpm_viscosity", "contact_stiffness", "contact_damping", "contact_friction",
                    "mpm_friction", "rigid_mass", "rigid_friction", "rigid_initial_pose")
_CONTACT_SLOT = {"contact_stiffness": 0, "contact_damping": 1, "contact_friction": 2}


def final_state_loss(state: dict[str, np.ndarray], seed: int = 0):
    """A fixed random linear form of the final positions (every node and particle counts)."""
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(size=v.shape) for k, v in state.items() if k.endswith("_x")}
    return lambda final: (float(sum(np.sum(w * final[k]) for k, w in weights.items())), weights)


def check_volumetric_gradients(world, kinds=VOLUMETRIC_KINDS, loss=None, seed: int = 0, rel_step: float = 1e-6):
    """Adjoint directional derivatives against float64 central differences, one per kind
    (sim.gradcheck.CheckResult rows). Action directions move positions and openings only."""
    from sim.gradcheck import action_direction, directional_check

    unknown = sorted(set(kinds) - set(VOLUMETRIC_KINDS))
    if unknown:
        raise ValueError(f"unknown parameter kinds {unknown} (expected some of {VOLUMETRIC_KINDS})")
    actions, params = world.actions.copy(), world.params()
    rng = np.random.default_rng(seed)

    def evaluate(acts, prm, initial=None):
        world.set_actions(acts)
        world.set_params(prm)
        run = VolumetricRun(world, initial=initial)
        return run, loss(run.final)

    if loss is None:
        world.reset()
        loss = final_state_loss(world.volumetric.get_state(), seed)
    run, (value, dfinal) = evaluate(actions, params)
    grads = run.backward(dfinal)
    results = []
    for kind in kinds:
        if kind == "actions":
            if not world.spec.tools:
                continue
            h = rel_step * max(1.0, np.abs(actions).max()) * 1e-2
            d = action_direction(rng, actions, 0.0)  # rotations are not differentiated
            result = directional_check(kind, grads.actions, d, h, lambda o: evaluate(actions + o, params)[1][0], value)
        elif kind == "rigid_initial_pose":
            if world.volumetric.rigid is None:
                continue
            world.reset()
            start = world.volumetric.get_state()
            d = {"rigid_x": rng.normal(size=start["rigid_x"].shape), "rigid_q": 0.1 * rng.normal(size=start["rigid_q"].shape)}
            grad = np.concatenate([grads.initial[k].ravel() for k in d])

            n = start["rigid_x"].size

            def moved(o):
                return evaluate(actions, params, {**start, "rigid_x": start["rigid_x"] + o[:n].reshape(-1, 3),
                                                  "rigid_q": start["rigid_q"] + o[n:].reshape(-1, 4)})[1][0]

            result = directional_check(kind, grad, np.concatenate([d[k].ravel() for k in d]), rel_step * 1e-2, moved, value)
        else:
            key = "volumetric_contact" if kind in _CONTACT_SLOT else kind
            if key not in params:
                continue
            d = np.zeros_like(params[key])
            if kind in _CONTACT_SLOT:
                d[_CONTACT_SLOT[kind]] = params[key][_CONTACT_SLOT[kind]]
            else:
                d = rng.uniform(0.5, 1.5, size=d.shape) * params[key]
            result = directional_check(kind, grads.params[key], d, rel_step,
                                       lambda o: evaluate(actions, {**params, key: params[key] + o})[1][0], value)
        results.append(result)
    world.set_actions(actions)
    world.set_params(params)
    return results
