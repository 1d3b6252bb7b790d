"""The reverse of one step's substeps with state memory for a chunk of substeps, not all.

A system keeps its per-substep state in a ring of ``slots`` rows: substep s reads row
slot(s) and writes row slot(s + 1) (s % slots, offset where the ring holds several steps),
so a forward step needs two rows whatever its substep count. To reverse a step, the
forward is run once keeping the state at every ``chunk``-th substep (numpy copies); then,
last chunk first, that state is put back, the chunk's substeps are recomputed into the
ring (chunk + 1 <= slots distinct rows) and reversed. Memory: slots rows plus substeps /
chunk copies; cost: one more forward. A step whose substeps the ring still holds from its
forward (``recorded``) is reversed without recomputing them.

A system offers (besides ``slots`` and ``slot(s)``):
  substep(s), reverse_substep(s)     forward and adjoint of substep s (ring rows of s); a
                                     reverse substep follows the forward of the same substep
                                     from the same row, which may keep what it needs there
  save_slot(r) -> state, load_slot(r, state)
  clear_state_grads()                zero the ring rows' adjoints that reverse substeps add to
                                     before setting them (not parameters)
  load_adjoint(r, adj), read_adjoint(r) -> adj
"""


def reverse_substeps(system, substeps: int, chunk: int, adj, recorded: bool = False):
    """Adjoint of a step whose start state the system holds in row slot(0) (and, if
    ``recorded``, every substep's state after it, as its forward left them): from ``adj``
    (w.r.t. the state after the last substep) to the adjoint w.r.t. the start state.
    Parameter and pose adjoints accumulate in the system."""
    if recorded:
        chunk = substeps
    if not 1 <= chunk < system.slots:
        raise ValueError(f"a chunk of {chunk} substeps needs 1 <= chunk < {system.slots} ring rows")
    starts = list(range(0, substeps, chunk))
    saved = {}
    if len(starts) > 1:  # one chunk: the start state is already in row slot(0)
        for s in range(substeps):
            if s % chunk == 0:
                saved[s] = system.save_slot(system.slot(s))
            system.substep(s)
    for first in reversed(starts):
        last = min(first + chunk, substeps)
        if first in saved:
            system.load_slot(system.slot(first), saved[first])
        if not recorded:
            for s in range(first, last):
                system.substep(s)
        system.clear_state_grads()
        system.load_adjoint(system.slot(last), adj)
        for s in reversed(range(first, last)):
            system.reverse_substep(s)
        adj = system.read_adjoint(system.slot(first))
    return adj
