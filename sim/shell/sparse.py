"""The shells' approximate Hessian as a sparse matrix of 3x3 blocks, and its factorization.

Newton's linear solves and the adjoint solve are CG with exact Hessian-vector products
(reverse-mode autodiff of the force kernels); this matrix, factorized, is their
preconditioner. It is the Hessian made positive semi-definite element by element
(``K.assemble_hessian``): inertia and damping, the membrane's Gauss-Newton part plus its
tensile stress, the hinges' Gauss-Newton part, penalty contact along the normal and friction
across it. With it CG needs a handful of iterations where a block-diagonal preconditioner
needed hundreds (each one a reverse pass of the force kernels).

The sparsity pattern is fixed by the mesh (vertex pairs sharing a triangle or a hinge), so
the kernels write each element's blocks straight into their slots of a block-CSR array,
read out as the scalar lower triangle through a fixed permutation. CHOLMOD's supernodal
sparse Cholesky (bundled with cvxopt, on OpenBLAS) factorizes it: the matrix is symmetric
positive definite. Its fill-reducing ordering and symbolic analysis are done once per
pattern; each later factorization only recomputes the values. Measured per factorization:
8 ms on the 31 x 31 pinch-lift (cholespy's CHOLMOD, which redoes the analysis each time:
28 ms; QDLDL, simplicial: 18 ms) and 0.44 s on a 129 x 129 sheet (cholespy 2.0 s, QDLDL 3.0 s).
"""

from __future__ import annotations

import cvxopt
import numpy as np
import scipy.sparse as sp
import taichi as ti
from cvxopt import cholmod

from sim.host_arrays import read, write

# Raised onto the diagonal, relative to its largest entry, one at a time, where round-off
# leaves the assembled matrix (positive definite in exact arithmetic, but with contact
# stiffness up to 1e8 times a light cloth's inertia) without a Cholesky factor. It only
# preconditions: CG's solutions keep the exact Hessian's products.
DIAGONAL_SHIFTS = (1e-12, 1e-10, 1e-8)


class SparsePattern:
    """Block-CSR pattern of the vertex pairs coupled by triangles and hinges, with the slot
    of every element block: ``tri_slot[t, 3 a + b]`` holds block (tri[t, a], tri[t, b]),
    ``hinge_slot[h, 4 a + b]`` block (hinge[h, a], hinge[h, b]), ``diag_slot[i]`` block (i, i)."""

    def __init__(self, nv: int, tris: np.ndarray, hinges: np.ndarray, real) -> None:
        self.nv = nv
        pairs = [np.stack([np.arange(nv), np.arange(nv)], axis=1)]
        for elems in (tris, hinges):
            if len(elems):
                k = elems.shape[1]
                pairs.append(np.stack([np.repeat(elems, k, axis=1).ravel(), np.tile(elems, (1, k)).ravel()], axis=1))
        keys = np.unique(np.concatenate([p[:, 0].astype(np.int64) * nv + p[:, 1] for p in pairs]))
        rows, self.indices = keys // nv, (keys % nv).astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=nv))]).astype(np.int32)
        slot = lambda a, b: np.searchsorted(keys, a.astype(np.int64) * nv + b).astype(np.int32)  # noqa: E731
        self.diag_slot = slot(np.arange(nv), np.arange(nv))
        self.tri_slot = self._element_slots(tris, slot)
        self.hinge_slot = self._element_slots(hinges, slot)
        self.blocks = ti.ndarray(ti.types.matrix(3, 3, real), len(keys))
        self.ti_tri_slot = self._to_ti(self.tri_slot)
        self.ti_hinge_slot = self._to_ti(self.hinge_slot)
        self.ti_diag_slot = self._to_ti(self.diag_slot[:, None])
        self._factor: Factorization | None = None
        self._scalar_lower_csc()

    @staticmethod
    def _element_slots(elems: np.ndarray, slot) -> np.ndarray:
        if not len(elems):
            return np.zeros((0, 1), np.int32)
        k = elems.shape[1]
        return slot(np.repeat(elems, k, axis=1), np.tile(elems, (1, k)))

    @staticmethod
    def _to_ti(slots: np.ndarray):
        arr = ti.ndarray(ti.i32, (max(len(slots), 1), slots.shape[1]))
        if len(slots):
            write(arr, slots)
        return arr

    def _scalar_lower_csc(self) -> None:
        """The scalar pattern of the 3 nv x 3 nv matrix's lower triangle (column-compressed,
        rows sorted: the order of CHOLMOD's values) and where each of its entries sits in the
        flattened blocks (computed once: reading the assembled blocks out is then a gather)."""
        n = 3 * self.nv
        order = np.arange(9 * len(self.indices), dtype=np.float64).reshape(-1, 3, 3)
        lower = sp.tril(sp.bsr_matrix((order, self.indices, self.indptr), shape=(n, n)), format="csc")
        lower.sort_indices()
        self._perm = lower.data.astype(np.int64)
        cols = np.repeat(np.arange(n), np.diff(lower.indptr))
        self._diag = np.flatnonzero(lower.indices == cols)
        self._lower = cvxopt.spmatrix(0.0, lower.indices.tolist(), cols.tolist(), (n, n))

    def factorize(self) -> "Factorization":
        """Factorize the assembled blocks (the ordering and symbolic analysis of the first
        factorization serve every later one: the pattern is fixed), with the diagonal
        raised by DIAGONAL_SHIFTS where round-off requires. Raises FloatingPointError for
        non-finite entries or a matrix no shift makes positive definite."""
        values = read(self.blocks).reshape(-1)[self._perm].astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise FloatingPointError("the shells' Hessian approximation has non-finite entries")
        if self._factor is None:
            self._lower.V = cvxopt.matrix(values)
            self._factor = Factorization(self._lower)
        largest = float(np.abs(values[self._diag]).max(initial=0.0))
        for shift in (0.0, *DIAGONAL_SHIFTS):
            shifted = values
            if shift:
                shifted = values.copy()
                shifted[self._diag] += shift * largest
            self._lower.V = cvxopt.matrix(shifted)
            try:
                self._factor.update(self._lower)
                return self._factor
            except ArithmeticError:
                continue
        raise FloatingPointError(
            f"the shells' Hessian approximation is not positive definite, even with its diagonal raised by "
            f"{DIAGONAL_SHIFTS[-1]:g} of its largest entry")


class Factorization:
    """A sparse Cholesky factor: ``solve(r)`` applies the matrix's inverse to (nv, 3) arrays."""

    def __init__(self, lower) -> None:
        """The ordering and symbolic analysis of ``lower``'s pattern; ``update`` factorizes."""
        self._factor = cholmod.symbolic(lower, uplo="L")

    def update(self, lower) -> None:
        """Factorize new values of the same pattern (ArithmeticError where they are not
        numerically positive definite)."""
        cholmod.numeric(lower, self._factor)

    def solve(self, r: np.ndarray) -> np.ndarray:
        x = cvxopt.matrix(np.ascontiguousarray(r, np.float64).reshape(-1))
        cholmod.solve(self._factor, x)
        return np.array(x).reshape(r.shape)
