"""The default optimizer: CMA-ES samples for a few generations to find a good basin, then
Adam refines the best sample found with gradients."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from sim.optim.adam import Adam, AdamSettings
from sim.optim.cmaes import CMAES, CMAESSettings
from sim.optim.problem import IterationReport, Problem, settings_from


@dataclass(frozen=True)
class HybridSettings:
    explore: int = 6  # CMA-ES generations before switching to Adam
    cmaes: CMAESSettings = field(default_factory=CMAESSettings)
    adam: AdamSettings = field(default_factory=AdamSettings)

    @classmethod
    def from_dict(cls, values: dict | None) -> "HybridSettings":
        values = dict(values or {})
        cm = settings_from(CMAESSettings, values.pop("cmaes", None))
        ad = settings_from(AdamSettings, values.pop("adam", None))
        return settings_from(cls, {**values, "cmaes": cm, "adam": ad})


class Hybrid:
    name = "hybrid"

    def __init__(self, problem: Problem, settings: HybridSettings | None = None, seed: int = 0, x0=None, iteration: int = 0):
        self.problem, self.settings, self.seed = problem, settings or HybridSettings(), seed
        self._sampler = CMAES(problem, self.settings.cmaes, seed, x0, iteration)
        self._refiner: Adam | None = None

    @property
    def _active(self):
        return self._refiner or self._sampler

    @property
    def iteration(self) -> int:
        return self._active.iteration

    @property
    def elapsed(self) -> float:
        return self._active.elapsed

    @property
    def best_loss(self) -> float:
        return self._active.best_loss

    @property
    def best_params(self):
        return self._active.best_params

    def step(self) -> IterationReport:
        if self._refiner is None and self._sampler.iteration - self._sampler.first_iteration >= self.settings.explore:
            self._refiner = self._refine_from_sampler()
        report = self._active.step()
        return replace(report, optimizer=self.name)

    def _refine_from_sampler(self) -> Adam:
        s = self._sampler
        # Refine from exactly the best sample: no start jitter.
        adam = Adam(self.problem, replace(self.settings.adam, init_noise=0.0), self.seed, x0=s.best_params, iteration=s.iteration)
        adam.elapsed, adam.evaluations = s.elapsed, s.evaluations
        adam.best_loss, adam.best_params = s.best_loss, s.best_params
        return adam

    def state_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "cmaes": self._sampler.state_dict(),
            "adam": self._refiner.state_dict() if self._refiner else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self._sampler.load_state_dict(state["cmaes"])
        self._refiner = None
        if state["adam"] is not None:
            self._refiner = self._refine_from_sampler()
            self._refiner.load_state_dict(state["adam"])
