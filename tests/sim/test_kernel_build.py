"""The Taichi front-end speed-ups of sim.kernel_build change nothing a kernel computes or says."""

import ast

import numpy as np
import pytest
import taichi as ti
from taichi.lang.ast import ast_transformer_utils
from taichi.lang.exception import TaichiCompilationError

from sim import kernel_build
from sim.runtime import RuntimeConfig, ensure_runtime


@pytest.fixture(scope="module", autouse=True)
def runtime():
    return ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))


@ti.func
def _square(v):
    return v * v


@ti.kernel
def _sum_squares(x: ti.types.ndarray(), total: ti.types.ndarray()):
    for i in range(x.shape[0]):
        total[0] += _square(x[i])


@ti.kernel
def _bad(x: ti.types.ndarray()):
    for i in range(x.shape[0]):
        x[i] = undefined_name  # noqa: F821  (the error this file's messages must point at)


def test_source_excerpts_are_memoized_and_identical_to_taichis():
    context = ast_transformer_utils.ASTTransformerContext
    assert hasattr(context.get_pos_info, "__wrapped__")  # installed by ensure_runtime

    class Ctx:  # what get_pos_info reads of its context
        file, lineno_offset, indent = "f.py", 10, 0
        func = type("F", (), {"func": _square})()
        src = ["x = alpha + beta_gamma"]

    node = ast.parse(Ctx.src[0]).body[0].value
    expected = context.get_pos_info.__wrapped__(Ctx(), node)
    assert expected.startswith('File "f.py", line 11, in _square:')
    assert "^" * len("alpha + beta_gamma") in expected
    first = context.get_pos_info(Ctx(), node)
    assert first == expected
    Ctx.src = ["changed"]  # a memo hit: the same position gives the same text
    assert context.get_pos_info(Ctx(), node) is first


def test_kernels_still_compile_right_and_errors_still_name_the_line():
    x = ti.ndarray(ti.f64, 4)
    x.from_numpy(np.array([1.0, 2.0, 3.0, 4.0]))
    total = ti.ndarray(ti.f64, 1)
    _sum_squares(x, total)
    assert total.to_numpy()[0] == 30.0
    with pytest.raises(TaichiCompilationError) as err:
        _bad(x)
    assert f'File "{__file__}"' in str(err.value)
    assert "x[i] = undefined_name" in str(err.value)


@ti.kernel
def _slope(x: ti.types.ndarray(), g: ti.types.ndarray()):
    """A hand-written derivative, the kind of kernel compiled without the passes."""
    for i in range(x.shape[0]):
        v = ti.Vector([x[i], 2.0 * x[i], 2.0 * x[i]])
        g[i] = ti.cos(x[i]) * v.norm_sqr() / 9.0 + 2.0 * x[i] * ti.sin(x[i]) * v.norm() / (3.0 * ti.abs(x[i]))


def test_kernels_compiled_without_ir_passes_compute_the_same_and_the_flag_comes_back():
    cfg = ti.lang.impl.current_cfg()
    assert cfg.advanced_optimization
    values = np.linspace(-1.0, 2.0, 6)  # no zero: |x| divides
    x, g = ti.ndarray(ti.f64, 6), ti.ndarray(ti.f64, 6)
    x.from_numpy(values)
    with kernel_build.without_ir_passes():
        assert not cfg.advanced_optimization
        _slope(x, g)
    assert cfg.advanced_optimization
    analytic = np.cos(values) * values**2 + 2.0 * values * np.sin(values)
    np.testing.assert_allclose(g.to_numpy(), analytic, rtol=1e-12)
    with pytest.raises(RuntimeError), kernel_build.without_ir_passes():
        raise RuntimeError("a failing kernel")
    assert cfg.advanced_optimization
