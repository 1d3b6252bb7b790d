"""Errors the simulator raises for bad runs (not bad input: that raises ValueError)."""

from __future__ import annotations


class SimulationError(RuntimeError):
    """A run blew up or failed to converge: names the step, the entity and the quantity.

    The world stays usable: ``reset()`` (or ``set_state`` of a saved state) and run again."""

    def __init__(self, step: int, entity: str, quantity: str, value: float, detail: str) -> None:
        self.step, self.entity, self.quantity, self.value = step, entity, quantity, value
        super().__init__(f"step {step}: {entity}: {quantity}: {detail}")
