"""The part of a scene's task loss that depends only on final shell positions, with its
gradient (for `deft simulate` summaries and `deft gradcheck`)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

SUPPORTED = ("lift_height", "position")


def final_position_loss(scene, shell_names: list[str], ranges) -> tuple[Callable | None, list[str]]:
    """(loss(observed) -> (value, d value / d observed), terms left out). ``observed`` is
    (1, vertices, 3), the final positions. lift_height: squared gap of the entity's mean
    height to target[0]; position: squared distance of its centroid to target[:3]."""
    terms, skipped = [], []
    for term in scene.task.loss:
        if term.kind in SUPPORTED and term.entity in shell_names and term.target:
            i = shell_names.index(term.entity)
            terms.append((term.kind, term.weight, slice(ranges[i], ranges[i + 1]), list(term.target)))
        else:
            skipped.append(term.kind)
    if not terms:
        return None, skipped

    def loss(observed: np.ndarray) -> tuple[float, np.ndarray]:
        x = torch.tensor(observed[-1], requires_grad=True)
        total = torch.zeros((), dtype=x.dtype)
        for kind, weight, sl, target in terms:
            pts = x[sl]
            if kind == "lift_height":
                total = total + weight * (pts[:, 2].mean() - target[0]) ** 2
            else:
                total = total + weight * ((pts.mean(0) - torch.tensor(target[:3], dtype=x.dtype)) ** 2).sum()
        total.backward()
        grad = np.zeros_like(observed)
        grad[-1] = x.grad.numpy()
        return float(total.detach()), grad

    return loss, skipped
