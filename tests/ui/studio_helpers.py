"""Helpers for the studio's UI tests: waiting, screenshots, picture comparison."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"


def settle(qtbot, ms: int = 50) -> None:
    """Let queued signals and deferred rebuilds run."""
    qtbot.wait(ms)


def wait_until(qtbot, condition, timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        qtbot.wait(20)


def show_panel(qtbot, window, key: str) -> None:
    """Bring a dock to the front; a plot panel builds its plots when first painted."""
    window.docks[key].raise_()
    settle(qtbot)
    plots = getattr(window.docks[key].widget(), "plots", None)
    if plots is not None:
        wait_until(qtbot, lambda: plots.ready, 30, f"the {key} panel's plots")


def save_screenshot(widget, name: str) -> Path:
    """A PNG of ``widget`` in artifacts/screenshots (reviewed by eye, kept by CI)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not write {path}"
    return path


def image_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels that differ noticeably between two pictures of the same size."""
    return float(np.mean(np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 24))


def copy_scene(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    shutil.copy(src, dst)
    return dst
