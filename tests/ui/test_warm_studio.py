"""What the studio does once its window is up, so pressing Optimize later stays smooth: the
plots are built before their panels are first shown, and garbage collection, off while
the studio starts (as ``deft gui`` does), comes back on with the start's objects frozen."""

from __future__ import annotations

import gc

from studio_helpers import wait_until
from ui import heap


def test_settle_turns_collection_back_on_only_when_the_start_turned_it_off():
    assert gc.isenabled()
    assert heap.settle() is False
    gc.disable()
    try:
        assert heap.settle() is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()


def test_plots_are_built_before_their_panels_show_and_collection_resumes(open_window, qtbot):
    gc.disable()
    try:
        window = open_window()
        for name in ("optimize", "tactile", "deploy"):  # behind the timeline's tab, never shown
            slot = getattr(window, f"{name}_panel").plots
            wait_until(qtbot, lambda: slot.ready, 60, f"the {name} panel's plots, built ahead")
            assert slot.visibleRegion().isEmpty(), name  # not painted yet: built ahead
        wait_until(qtbot, gc.isenabled, 90, "garbage collection back on after the warm-up")
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
