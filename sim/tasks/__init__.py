"""The task suite: each task is a loss over a rollout, a success criterion and default
optimizer settings, bound to a compiled world by ``sim.tasks.registry``."""
