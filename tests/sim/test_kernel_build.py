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


@ti.data_oriented
class _Slots:
    def __init__(self, n: int) -> None:
        self.x = ti.field(ti.f64, shape=n)

    @ti.kernel
    def add(self, i: ti.i32, amount: ti.f64):
        self.x[i] += amount

    @ti.kernel
    def fill_first(self, count: ti.template(), value: ti.f64):
        for i in range(count):
            self.x[i] = value


def _count_key_derivations(kernel, monkeypatch) -> list:
    calls = []
    derive = kernel.ensure_compiled
    monkeypatch.setattr(kernel, "ensure_compiled", lambda *a: calls.append(a) or derive(*a))
    return calls


def test_a_repeated_launch_skips_the_key_yet_reaches_its_own_owner(monkeypatch):
    a, b = _Slots(3), _Slots(3)
    derivations = _count_key_derivations(_Slots.add._primal, monkeypatch)
    a.add(0, 1.0)  # the full call, remembered
    assert derivations
    derivations.clear()
    a.add(1, 2.0)
    a.add(1, 0.5)
    assert not derivations  # launched directly
    b.add(0, 5.0)  # another owner: the full call once
    assert derivations
    derivations.clear()
    for _ in range(3):
        a.add(2, 1.0)
        b.add(2, -1.0)
    assert not derivations
    np.testing.assert_array_equal(a.x.to_numpy(), [1.0, 2.5, 3.0])
    np.testing.assert_array_equal(b.x.to_numpy(), [5.0, 0.0, -3.0])


def test_a_template_number_picks_its_own_compiled_variant(monkeypatch):
    s = _Slots(4)
    derivations = _count_key_derivations(_Slots.fill_first._primal, monkeypatch)
    s.fill_first(2, 7.0)
    s.fill_first(3, 9.0)
    np.testing.assert_array_equal(s.x.to_numpy(), [9.0, 9.0, 9.0, 0.0])
    derivations.clear()
    s.fill_first(2, 1.0)  # the count-2 variant, remembered
    s.fill_first(3, 4.0)
    assert not derivations
    np.testing.assert_array_equal(s.x.to_numpy(), [4.0, 4.0, 4.0, 0.0])
    s.fill_first(1, 8.0)  # a new value: a new variant through the full call
    assert derivations
    np.testing.assert_array_equal(s.x.to_numpy(), [8.0, 4.0, 4.0, 0.0])


@ti.kernel
def _twice(v: ti.f64) -> ti.f64:
    return 2.0 * v


def test_after_taichi_restarts_kernels_compile_again_for_new_owners():
    s = _Slots(2)
    s.add(0, 1.0)
    s.add(0, 1.0)
    assert _twice(1.5) == 3.0 and _twice(2.0) == 4.0  # remembered, then launched directly
    ensure_runtime(RuntimeConfig(backend="cpu", precision="f32"))  # a reset: compiled kernels dropped
    try:
        assert _twice(4.0) == 8.0  # the remembered key has no kernel now: compiled again
        t = _Slots(2)
        t.add(1, 3.0)
        t.add(1, 3.0)
        assert t.x.to_numpy().tolist() == [0.0, 6.0]
    finally:
        ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))
