"""Starting `deft lab-sim` in another process and waiting until it serves."""

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from tests.robot.conftest import REPO

LAB_ARGS = ["--tactile", "left=/tactile/left", "--object-width", "0.03"]


@contextmanager
def lab_sim_process(*extra: str, command: list[str] | None = None, timeout: float = 30.0):
    """The lab-sim as a child process (it inherits the private ROS domain of tests/conftest.py);
    ``command`` replaces the default ``python -m robot.ros2.lab_sim`` with its test arguments."""
    command = command or [sys.executable, "-m", "robot.ros2.lab_sim", *LAB_ARGS]
    proc = subprocess.Popen([*command, *extra], cwd=REPO,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        for line in proc.stdout:  # blocks per line; the process prints "lab-sim ready" once serving
            if "lab-sim ready" in line:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("lab-sim did not start")
        else:
            raise RuntimeError(f"lab-sim exited with {proc.wait()} before serving")
        proc.log = []  # what it prints later (rejections), drained so the pipe never fills
        threading.Thread(target=lambda: proc.log.extend(proc.stdout), daemon=True).start()
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
