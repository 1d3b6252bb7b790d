"""Optimizers by name, their settings from plain mappings, and exact save/resume of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from sim.optim.adam import Adam, AdamSettings
from sim.optim.cmaes import CMAES, CMAESSettings
from sim.optim.hybrid import Hybrid, HybridSettings
from sim.optim.problem import IterationReport, Problem, settings_from

OPTIMIZERS = {"hybrid": Hybrid, "adam": Adam, "cmaes": CMAES}
DEFAULT_OPTIMIZER = "hybrid"


def parse_settings(name: str, values: dict | None):
    if name == "hybrid":
        return HybridSettings.from_dict(values)
    if name == "adam":
        return settings_from(AdamSettings, values)
    if name == "cmaes":
        return settings_from(CMAESSettings, values)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")


def make_optimizer(name: str, problem: Problem, settings: dict | None = None, seed: int = 0):
    parsed = parse_settings(name, settings)  # names an unknown optimizer or setting
    return OPTIMIZERS[name](problem, parsed, seed)


def iterate(optimizer, iterations: int) -> Iterator[IterationReport]:
    """Yield up to `iterations` more reports; the caller may stop between any two."""
    for _ in range(iterations):
        yield optimizer.step()


def save_state(path: Path, optimizer, extra: dict | None = None) -> None:
    """Write the optimizer's complete state (plain data and tensors, no code objects) in one
    atomic file, with `extra` plain data the caller wants kept in step with it."""
    state = {"optimizer": optimizer.name, "seed": optimizer.seed, "state": optimizer.state_dict(), "extra": extra or {}}
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path, problem: Problem):
    """Rebuild an optimizer (and the saved extra data) from save_state's file; loading
    executes no stored code."""
    try:
        saved = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"no saved optimizer state at {path}") from None
    name = saved["optimizer"]
    settings = saved["state"]["settings"]
    optimizer = OPTIMIZERS[name](problem, parse_settings(name, _plain(settings)), saved["seed"])
    optimizer.load_state_dict(saved["state"])
    return optimizer, saved["extra"]


def _plain(settings: dict) -> dict:
    """Saved settings back to constructor values (nested dataclasses came back as dicts)."""
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in settings.items()}
