"""Deft's differentiable simulator: Taichi kernels, with numpy and torch around them."""

import os

# A CPU with at most this many cores counts as small: there, waking and waiting for worker
# threads costs more than they gain on most of the simulator's loops (see sim.runtime).
SMALL_CPU_CORES = 8
SMALL_CPU = (os.cpu_count() or 1) <= SMALL_CPU_CORES

# torch's intra-op workers spin-wait for one another: where another busy thread shares the
# small CPU (Taichi's, the studio's GUI, another Deft process), a tactile image's einsum (63
# markers over 320 x 240 pixels) took 15 ms on two threads against 0.3 ms on one, and two
# `deft simulate` runs of a pinch between two tactile pads at once took 50 s each against
# 12 s. torch reads this once, when it is imported; an explicit setting wins.
if SMALL_CPU:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
