"""Frames are frozen copies; a run finds the frame shown at any time by lookup."""

import numpy as np
import pytest

from app.services.frames import EntityFrame, Frame, Run, TactileFrame, frozen


def test_frozen_copies_cannot_be_written_and_do_not_alias():
    source = np.zeros((4, 3))
    copy = frozen(source)
    source[:] = 1
    assert copy.sum() == 0
    with pytest.raises(ValueError):
        copy[0, 0] = 2.0


def test_run_index_at_time_and_force_series():
    run = Run("simulation")
    for i in range(5):
        tactile = {"pad": TactileFrame(normal_force=float(i), shear_force=0.5 * i)}
        run.append(Frame(index=i, time=0.1 * i, entities={"cloth": EntityFrame(frozen(np.zeros((2, 3))))}, tactile=tactile))
    assert run.index_at(-1.0) == 0
    assert run.index_at(0.25) == 2
    assert run.index_at(10.0) == 4
    t, normal, shear = run.tactile_forces("pad")
    np.testing.assert_allclose(t, [0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(normal, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(shear, 0.5 * normal)
    with pytest.raises(ValueError, match="back in time"):
        run.append(Frame(index=5, time=0.0))
