"""The two memory rules of backward passes (sim.checkpoints)."""

from sim.checkpoints import checkpoint_interval, substeps_per_chunk


def test_every_steps_state_is_kept_while_they_fit_else_about_sqrt_steps_of_them():
    assert checkpoint_interval(100, 10**6, budget_mb=100.0) == 1
    assert checkpoint_interval(100, 10**6 + 1, budget_mb=100.0) == 10


def test_a_step_is_recomputed_whole_while_its_ring_fits_else_in_sqrt_sized_chunks():
    assert substeps_per_chunk(55, 1000, budget=56 * 1000) == 55
    assert substeps_per_chunk(55, 1001, budget=56 * 1000) == 8
