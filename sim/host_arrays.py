"""Reading and writing Taichi ndarrays from numpy without a kernel launch where they live in
host memory.

Taichi's ``to_numpy`` and ``from_numpy`` launch a copy kernel each, also on the CPU backends
where an ndarray is plain host memory: about 0.2 ms per call on the 2-core machine, and the
shell solver moves about a hundred arrays per step (every conjugate-gradient product hands
a vector to the force kernels' reverse and reads one back). On x64 and arm64 these functions
copy through a numpy view of the ndarray's own memory instead (microseconds); elsewhere (CUDA,
Vulkan) they call Taichi's. Kernel launches on the CPU return when the kernel is done, so
the memory is never read mid-kernel. Views never leave this module: what ``read`` returns is
a copy, so it cannot change under its holder or outlive the ndarray.
"""

from __future__ import annotations

import ctypes

import numpy as np
import taichi as ti
from taichi.lang import impl

_HOST_ARCHS = ("x64", "arm64")
_CTYPES = {np.dtype(np.float64): ctypes.c_double, np.dtype(np.float32): ctypes.c_float,
           np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64,
           np.dtype(np.uint8): ctypes.c_uint8}


def _on_host() -> bool:
    return impl.current_cfg().arch.name in _HOST_ARCHS


def _view(arr: ti.Ndarray) -> np.ndarray | None:
    """A numpy view of the ndarray's memory, or None where it is not host memory."""
    if not _on_host():
        return None
    dtype = np.dtype(ti.lang.util.to_numpy_type(arr.dtype))
    shape = tuple(arr.shape) + tuple(arr.element_shape)
    count = int(np.prod(shape, dtype=np.int64))
    address = impl.get_runtime().prog.get_ndarray_data_ptr_as_int(arr.arr)
    buffer = (_CTYPES[dtype] * count).from_address(address)
    return np.frombuffer(buffer, dtype).reshape(shape)


def read(arr: ti.Ndarray) -> np.ndarray:
    """A numpy copy of the ndarray's contents."""
    view = _view(arr)
    return arr.to_numpy() if view is None else view.copy()


def write(arr: ti.Ndarray, value) -> None:
    """Set the ndarray's contents; ``value`` must have its exact shape (no broadcasting)."""
    value = np.asarray(value)
    view = _view(arr)
    if view is None:
        arr.from_numpy(np.ascontiguousarray(value, ti.lang.util.to_numpy_type(arr.dtype)))
        return
    if value.shape != view.shape:
        raise ValueError(f"cannot write an array of shape {value.shape} into an ndarray of shape {view.shape}")
    view[...] = value


def zero(arr: ti.Ndarray, kernel_fill) -> None:
    """Set every element to zero: in place on the host, else by ``kernel_fill(arr)`` (a
    compiled kernel: Taichi's own ``fill`` builds a new one at every call)."""
    view = _view(arr)
    if view is None:
        kernel_fill(arr)
    else:
        view.fill(0)
