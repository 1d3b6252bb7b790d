"""sim.host_arrays reads and writes ndarrays exactly as Taichi's own copies do, without them."""

import numpy as np
import pytest
import taichi as ti

from sim import host_arrays
from sim.runtime import RuntimeConfig, ensure_runtime


@pytest.fixture(scope="module", autouse=True)
def runtime():
    return ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))


@ti.kernel
def _add_one(a: ti.types.ndarray()):
    for i in range(a.shape[0]):
        a[i] += 1


ELEMENTS = [
    (ti.f64, ()), (ti.f32, ()), (ti.i32, ()), (ti.f64, (3,)), (ti.f32, (3,)), (ti.i32, (4,)), (ti.f64, (2, 2)),
]


@pytest.mark.parametrize("dtype,element", ELEMENTS)
def test_round_trip_matches_taichis_copies(dtype, element):
    kind = dtype if not element else (ti.types.vector(element[0], dtype) if len(element) == 1
                                      else ti.types.matrix(*element, dtype))
    arr = ti.ndarray(kind, 5, needs_grad=dtype != ti.i32)
    value = (np.arange(5 * int(np.prod(element)), dtype=np.float64).reshape((5, *element)) * 1.5 - 3.0)
    value = value.astype(ti.lang.util.to_numpy_type(dtype))
    host_arrays.write(arr, value)
    assert np.array_equal(arr.to_numpy(), value)
    _add_one(arr)  # a kernel's writes are seen by the next read
    got = host_arrays.read(arr)
    assert np.array_equal(got, value + 1)
    got[0] = 99  # a copy: the ndarray keeps its contents
    assert np.array_equal(arr.to_numpy(), value + 1)
    if dtype != ti.i32:
        host_arrays.write(arr.grad, value)
        host_arrays.zero(arr.grad, lambda a: a.fill(0))
        assert not arr.grad.to_numpy().any()


def test_write_refuses_a_wrong_shape_instead_of_broadcasting():
    arr = ti.ndarray(ti.types.vector(3, ti.f64), 4)
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(4, 3\)"):
        host_arrays.write(arr, np.zeros(3))
