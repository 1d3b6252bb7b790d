"""The kinematic colliders every system sees: shapes, contact parameters and two poses (ndarrays).

A mesh collider's ``size`` holds its baked grid's slot in sim.sdf.MeshPool (``collider_size``
uploads the grid, so the pool exists before any kernel compiles).

During step n -> n+1, ``pos1``/``quat1`` hold the colliders' poses at the end of the step
and ``pos0``/``quat0`` at its start (friction compares the two). Poses, friction and
contact stiffness carry gradients, which systems accumulate in their backward passes.
"""


import numpy as np
import taichi as ti

from sim.host_arrays import read, write
from sim.sdf import collider_size, shape_kinds
from sim.spec import COLLIDER_SHAPES, WorldSpec

A = ti.types.ndarray()


@ti.kernel
def _zero(pos0: A, quat0: A, pos1: A, quat1: A, friction: A, stiffness: A):
    for i in range(pos0.shape[0]):
        pos0[i], quat0[i], pos1[i], quat1[i] = ti.zero(pos0[i]), ti.zero(quat0[i]), ti.zero(pos1[i]), ti.zero(quat1[i])
        friction[i], stiffness[i] = 0.0, 0.0


class Colliders:
    def __init__(self, spec: WorldSpec, real, untouched: tuple[str, ...] = ()) -> None:
        """untouched: colliders the shells pass through (fingers carrying a pad, whose gel
        is the contact surface: sim.pad_shell); they act with zero stiffness."""
        self.count = len(spec.colliders)
        self.touched = np.array([c.name not in untouched for c in spec.colliders], np.float64)
        self.names = [c.name for c in spec.colliders]
        self.shape_kinds = shape_kinds(c.shape for c in spec.colliders)  # the collider_sdf branches kernels compile
        n = max(self.count, 1)  # Taichi arrays cannot be empty
        vec = lambda k: ti.ndarray(ti.types.vector(k, real), n, needs_grad=True)  # noqa: E731
        self.kind = ti.ndarray(ti.i32, n)
        self.size = ti.ndarray(ti.types.vector(3, real), n)
        self.pos0, self.quat0, self.pos1, self.quat1 = vec(3), vec(4), vec(3), vec(4)
        self.friction = ti.ndarray(real, n, needs_grad=True)
        self.stiffness = ti.ndarray(real, n, needs_grad=True)
        if self.count:
            write(self.kind, np.array([COLLIDER_SHAPES.index(c.shape) for c in spec.colliders], np.int32))
            write(self.size, np.array([collider_size(c.shape, c.size, c.sdf) for c in spec.colliders], np.float64))
            self.set_params(
                np.array([c.friction for c in spec.colliders]), np.array([c.contact_stiffness for c in spec.colliders])
            )

    def set_params(self, friction: np.ndarray, stiffness: np.ndarray) -> None:
        if self.count:
            self.friction_np = np.array(friction, np.float64)
            self.stiffness_np = np.array(stiffness, np.float64)
            write(self.friction, self.friction_np)
            write(self.stiffness, self.stiffness_np * self.touched)

    def set_poses(self, start: np.ndarray, end: np.ndarray) -> None:
        """Poses (colliders, 7) at the start and the end of the coming step."""
        if self.count:
            write(self.pos0, start[:, :3])
            write(self.quat0, start[:, 3:])
            write(self.pos1, end[:, :3])
            write(self.quat1, end[:, 3:])

    def clear_grads(self) -> None:
        # one compiled kernel: ndarray.fill compiles a new one on every call
        _zero(self.pos0.grad, self.quat0.grad, self.pos1.grad, self.quat1.grad, self.friction.grad, self.stiffness.grad)

    def pose_grads(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradients for the (start, end) poses, each (colliders, 7)."""
        start = np.concatenate([read(self.pos0.grad), read(self.quat0.grad)], axis=1)[: self.count]
        end = np.concatenate([read(self.pos1.grad), read(self.quat1.grad)], axis=1)[: self.count]
        return start, end

    def param_grads(self) -> dict[str, np.ndarray]:
        return {
            "collider_friction": read(self.friction.grad)[: self.count],
            "collider_stiffness": read(self.stiffness.grad)[: self.count] * self.touched,
        }
