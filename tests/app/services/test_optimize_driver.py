"""The optimization driver pulls reports on the simulation thread and stops within one."""

import threading
import time

import pytest

from app.scene import model as m
from app.services.optimize_driver import OptimizeDriver, optimizer_for, why_not_optimizable
from app.services.sim_thread import SimulationThread


@pytest.fixture
def driver():
    worker = SimulationThread()
    yield OptimizeDriver(worker), worker
    worker.shutdown()


def test_reports_arrive_on_the_simulation_thread_and_stop_within_one(driver):
    opt, worker = driver
    seen, threads, produced = [], set(), []
    done = threading.Event()
    outcome = {}

    def reports():
        for i in range(1000):
            produced.append(i)
            time.sleep(0.002)
            yield i

    def on_report(r):
        seen.append(r)
        threads.add(threading.get_ident())
        if r == 4:
            opt.stop()

    opt.start(reports, on_report, lambda o: (outcome.update(o=o), done.set()), lambda e: (outcome.update(e=e), done.set()))
    assert done.wait(10)
    assert outcome["o"].cancelled and outcome["o"].iterations == 5
    assert seen == [0, 1, 2, 3, 4] and produced == [0, 1, 2, 3, 4]
    assert threads == {worker.ident}


def test_errors_are_reported_not_swallowed(driver):
    opt, _ = driver
    done = threading.Event()
    got = []

    def reports():
        yield 1
        raise FloatingPointError("loss is NaN at iteration 2")

    opt.start(reports, lambda r: None, lambda o: done.set(), lambda e: (got.append(e), done.set()))
    assert done.wait(10)
    assert isinstance(got[0], FloatingPointError)
    with pytest.raises(RuntimeError, match="already running"):
        opt.start(lambda: iter([time.sleep(0.5)]), lambda r: None, lambda o: None, lambda e: None)
        opt.start(lambda: iter([]), lambda r: None, lambda o: None, lambda e: None)


def test_scene_optimizer_names_and_availability():
    assert [optimizer_for(m) for m in ("hybrid", "adam", "cmaes")] == ["hybrid", "adam", "cmaes"]
    with pytest.raises(ValueError, match="'sgd' is not implemented"):
        optimizer_for("sgd")
    scene = m.Scene(task=m.Task(kind="reach"))
    assert why_not_optimizable(scene) == ""
    scene.task.kind = "juggle"
    assert "juggle" in why_not_optimizable(scene)
