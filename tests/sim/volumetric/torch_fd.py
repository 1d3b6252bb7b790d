"""Float64 central differences of a torch loss along random directions, one per parameter."""

import pytest
import torch


def assert_gradients_match(loss, params, scales, h: float = 1e-4, rel: float = 1e-3, seed: int = 1) -> list[torch.Tensor]:
    """Backpropagates loss(*params) once, then for each parameter k compares grad . d with
    (loss(p + h d) - loss(p - h d)) / 2h, d random normal times scales[k] (a number or a
    tensor of the parameter's shape). Returns the parameters with their gradients."""
    params = [p.detach().to(torch.float64).requires_grad_(True) for p in params]
    loss(*params).backward()
    gen = torch.Generator().manual_seed(seed)
    for k, p in enumerate(params):
        direction = torch.randn(p.shape, dtype=torch.float64, generator=gen) * scales[k]
        with torch.no_grad():
            args = [q.detach().clone() for q in params]
            args[k] = p.detach() + h * direction
            up = loss(*args)
            args[k] = p.detach() - h * direction
            down = loss(*args)
        fd = float((up - down) / (2 * h))
        assert float((p.grad * direction).sum()) == pytest.approx(fd, rel=rel), f"parameter {k}"
    return params
