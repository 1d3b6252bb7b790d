"""Trajectory optimization: parameterizations, loss terms and optimizers (torch + cma only).

Everything here works on flat float64 parameter vectors and plain callables, so it can be
tested on analytic objectives and wired to any differentiable rollout by the tasks.
"""
