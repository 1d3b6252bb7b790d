"""How far apart the checkpoints of a backward pass lie (shells, MPM, the volumetric world).

A backward pass needs every step's start state. Keeping them all costs steps x state bytes
and recomputes nothing; keeping one every k steps costs steps / k states plus a segment of
k recomputed in the backward, smallest at k ~ sqrt(steps). The states are kept while they
fit in a budget, so short horizons (most tasks, the benchmarks against research codes) pay
no recomputation and long ones keep memory O(sqrt(steps)).
"""

import math

BUDGET_MB = 256.0  # default memory for checkpoints (sim.spec.Settings.checkpoint_budget_mb)
RING_BUDGET_BYTES = 512 * 2**20  # substep states a backward may keep at once (a system's ring)
TAPE_BUDGET_MB = 1024.0  # whole steps' substep states a volumetric forward keeps for its backward (Settings.tape_budget_mb)
# At most this many steps on such a tape, whatever a run's length: the ring's size is compiled
# into every kernel of the system, so it must not change with the number of steps.
TAPE_STEPS = 8


def checkpoint_interval(steps: int, state_bytes: int, budget_mb: float = BUDGET_MB) -> int:
    """1 (keep every step's state) while ``steps`` states fit in the budget, else about sqrt(steps)."""
    return 1 if steps * state_bytes <= budget_mb * 1e6 else max(1, math.isqrt(steps))


def substeps_per_chunk(substeps: int, row_bytes: int, budget: int = RING_BUDGET_BYTES) -> int:
    """Substeps a step's backward recomputes together (sim.mpm.chunks): all of them while a
    ring of substeps + 1 rows fits the budget (then no extra forward pass saves chunk
    starts), else about sqrt(substeps)."""
    return substeps if (substeps + 1) * row_bytes <= budget else math.ceil(math.sqrt(substeps))


def steps_on_tape(substeps: int, row_bytes: int, budget_mb: float = TAPE_BUDGET_MB) -> int:
    """Whole steps whose every substep state a ring of the budget holds (consecutive steps
    share their boundary row), at most TAPE_STEPS: the last that many steps of a forward run
    stay there for its backward, which then reverses them without recomputing them."""
    return max(0, min(TAPE_STEPS, (int(budget_mb * 2**20) // max(row_bytes, 1) - 1) // substeps))
