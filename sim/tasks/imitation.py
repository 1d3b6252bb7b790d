"""Imitation from one demonstration on the tactile pad rig.

The demonstration is the pad's final gel-node positions after pressing a bump (relative to
the bump). A small policy network maps the bump's offset from its nominal place (the
starting configuration) to the tool's keyframes; it is trained by backpropagation through
the FEM rollout to reproduce the demonstrated contact (mean squared distance between the
rollout's and the demonstration's gel nodes, both relative to the bump) on randomly
perturbed starts, and evaluated on other perturbed starts against replaying the
demonstration's trajectory unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sim.optim.parameterization import SplineKeyframes
from sim.tasks.pad_rig import PadRig


@dataclass
class Demonstration:
    params: np.ndarray  # the demonstrated trajectory's keyframe parameters
    gel: torch.Tensor  # (gel nodes, 3) final gel-node positions relative to the bump


class KeyframePolicy(torch.nn.Module):
    """offset (2,) m -> keyframe parameters: the demonstration's plus a learned correction,
    bounded to +-reach (m) by a tanh."""

    def __init__(self, demo_params: np.ndarray, reach: float = 0.004, hidden: int = 32, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.register_buffer("base", torch.as_tensor(demo_params, dtype=torch.float64))
        self.reach = reach
        self.net = torch.nn.Sequential(torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, len(demo_params))).double()
        torch.nn.init.zeros_(self.net[2].weight)  # starts as the demonstration itself
        torch.nn.init.zeros_(self.net[2].bias)

    def forward(self, offset: torch.Tensor) -> torch.Tensor:
        return self.base + self.reach * torch.tanh(self.net(offset / self.reach))


class Imitation:
    """Rollouts of the rig with the bump moved by an offset, scored against a demonstration."""

    def __init__(self, rig: PadRig, param: SplineKeyframes, bump: int = 0):
        self.rig, self.param, self.bump = rig, param, bump
        self.gel = torch.as_tensor(rig.system.bodies[0].mesh.gel_nodes.astype(np.int64))

    def gel_after(self, params: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Final gel-node positions relative to the (moved) bump."""
        path = self.param.decode(params)
        shift = torch.cat([offset, offset.new_zeros(1)])
        shapes = self.rig.shape_pos.clone()
        shapes[:, self.bump] = shapes[:, self.bump] + shift
        x, _ = self.rig.run(path, shape_pos=shapes)
        return x[-1, self.gel] - shapes[-1, self.bump]

    def demonstrate(self, params: np.ndarray) -> Demonstration:
        with torch.no_grad():
            return Demonstration(np.asarray(params, dtype=np.float64), self.gel_after(torch.as_tensor(params), torch.zeros(2, dtype=torch.float64)))

    def loss(self, demo: Demonstration, params: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Mean squared distance (m^2) of corresponding gel nodes: the same mesh in both runs,
        so nodes pair up (a Chamfer distance would let a regular grid alias onto itself)."""
        return ((self.gel_after(params, offset) - demo.gel) ** 2).sum(-1).mean()

    def train(self, demo: Demonstration, policy: KeyframePolicy, iterations: int, spread: float, seed: int = 0, lr: float = 0.02):
        """Adam on the policy's weights over random offsets in [-spread, spread]^2; yields
        (iteration, loss) so callers can show progress or stop."""
        rng = np.random.default_rng(seed)
        opt = torch.optim.Adam(policy.parameters(), lr=lr)
        for it in range(iterations):
            offset = torch.as_tensor(rng.uniform(-spread, spread, 2))
            opt.zero_grad()
            loss = self.loss(demo, policy(offset), offset)
            loss.backward()
            opt.step()
            yield it + 1, float(loss.detach())

    def evaluate(self, demo: Demonstration, policy: KeyframePolicy, offsets: np.ndarray) -> dict:
        """Chamfer (m^2) of the policy and of the unchanged demonstration per offset."""
        rows = []
        with torch.no_grad():
            for off in offsets:
                o = torch.as_tensor(off, dtype=torch.float64)
                rows.append({"offset": [float(v) for v in off], "policy": float(self.loss(demo, policy(o), o)),
                             "replay": float(self.loss(demo, torch.as_tensor(demo.params), o))})
        return {"rows": rows, "policy_mean": float(np.mean([r["policy"] for r in rows])), "replay_mean": float(np.mean([r["replay"] for r in rows]))}
