"""The shells' preconditioner (sim.shell.sparse): a matrix that round-off leaves without a
Cholesky factor is factorized with its diagonal raised a little; one that is truly
indefinite or not finite is refused by name, and a world step reports it as a
SimulationError naming the step and the shell."""

import numpy as np
import pytest

from sim.runtime import ensure_runtime
from sim.shell.sparse import DIAGONAL_SHIFTS, SparsePattern


def _pattern(a: np.ndarray, b: np.ndarray) -> SparsePattern:
    """Two vertices of one hinge-less triangle pair, their blocks [[a, b], [b, a]] (the
    third vertex's row the identity)."""
    import taichi as ti

    ensure_runtime()
    pattern = SparsePattern(3, np.array([[0, 1, 2]]), np.zeros((0, 4), np.int64), ti.f64)
    blocks = np.zeros((len(pattern.indices), 3, 3))
    blocks[pattern.diag_slot] = np.eye(3)
    blocks[pattern.diag_slot[:2]] = a
    for i, j in ((0, 1), (1, 0)):
        blocks[np.flatnonzero((np.repeat(np.arange(3), np.diff(pattern.indptr)) == i) & (pattern.indices == j))] = b
    pattern.blocks.from_numpy(blocks)
    return pattern


def test_a_singular_but_semi_definite_matrix_is_factorized_with_a_raised_diagonal():
    pattern = _pattern(np.eye(3), np.eye(3))  # [[I, I], [I, I]]: rank 3 of 6, exactly singular
    factor = pattern.factorize()
    r = np.zeros((3, 3))
    r[0] = r[1] = 1.0  # in the range: the shifted inverse stays close to the pseudo-inverse's
    x = factor.solve(r)
    assert np.all(np.isfinite(x)) and np.abs(x).max() < 1.0 / DIAGONAL_SHIFTS[0]


@pytest.mark.parametrize("b, what", [(2 * np.eye(3), "not positive definite"), (np.full((3, 3), np.nan), "non-finite")])
def test_an_indefinite_or_broken_matrix_is_refused_by_name(b, what):
    with pytest.raises(FloatingPointError, match=what):
        _pattern(np.eye(3), b).factorize()


def test_a_step_reports_a_broken_preconditioner_with_its_step_and_shell(monkeypatch):
    from sim.errors import SimulationError
    from sim.world import World
    from tests.sim.scenes import pushed_sheet

    world = World(pushed_sheet())
    world.step()

    def broken(self):
        raise FloatingPointError("the shells' Hessian approximation has non-finite entries")

    monkeypatch.setattr(SparsePattern, "factorize", broken)
    with pytest.raises(SimulationError, match=r"step 1: .*preconditioner: the shells' Hessian approximation has non-finite"):
        world.step()
