"""The simulation thread runs every job on one thread, in order, and cancels cooperatively."""

import threading

import pytest

from app.services.sim_thread import Cancelled, CancelToken, SimulationThread


@pytest.fixture
def sim_thread():
    worker = SimulationThread()
    yield worker
    worker.shutdown()


def test_jobs_run_on_one_thread_in_order(sim_thread):
    seen = []
    futures = [sim_thread.submit(lambda i=i: seen.append((i, threading.get_ident()))) for i in range(20)]
    for f in futures:
        f.result(timeout=5)
    assert [i for i, _ in seen] == list(range(20))
    assert {t for _, t in seen} == {sim_thread.ident}
    assert sim_thread.ident != threading.get_ident()
    assert sim_thread.submit(sim_thread.on_thread).result(timeout=5) is True
    assert not sim_thread.on_thread()


def test_cancel_token_stops_a_job_between_steps(sim_thread):
    token = CancelToken()
    started = threading.Event()
    steps = []

    def job():
        for i in range(10_000):
            token.raise_if_cancelled()
            steps.append(i)
            started.set()
            threading.Event().wait(0.001)

    future = sim_thread.submit(job)
    started.wait(5)
    token.cancel()
    with pytest.raises(Cancelled):
        future.result(timeout=5)
    assert 0 < len(steps) < 10_000


def test_the_process_has_one_shared_simulation_thread():
    from app.services.sim_thread import shared_simulation_thread

    first = shared_simulation_thread()
    assert shared_simulation_thread() is first
    assert first.submit(threading.get_ident).result(timeout=5) == first.ident
