"""How far apart the checkpoints of a backward pass lie (shells, MPM, the volumetric world).

A backward pass needs every step's start state. Keeping them all costs steps x state bytes
and recomputes nothing; keeping one every k steps costs steps / k states plus a segment of
k recomputed in the backward, smallest at k ~ sqrt(steps). The states are kept while they
fit in a budget, so short horizons (most tasks, the benchmarks against research codes) pay
no recomputation and long ones keep memory O(sqrt(steps)).
"""

import math

BUDGET_MB = 256.0  # default memory for checkpoints (sim.spec.Settings.checkpoint_budget_mb)


def checkpoint_interval(steps: int, state_bytes: int, budget_mb: float = BUDGET_MB) -> int:
    """1 (keep every step's state) while ``steps`` states fit in the budget, else about sqrt(steps)."""
    return 1 if steps * state_bytes <= budget_mb * 1e6 else max(1, math.isqrt(steps))
