import pytest

from sim.runtime import RuntimeConfig, ensure_runtime


def test_cpu_runtime_initialises_once_and_reports_where_it_runs():
    a = ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))
    b = ensure_runtime()
    assert a is b
    assert a.arch in ("x64", "arm64")
    assert "CPU" in a.message


def test_missing_accelerator_falls_back_to_cpu_with_a_message():
    rt = ensure_runtime(RuntimeConfig(backend="auto", precision="f64"))
    if rt.arch in ("cuda", "vulkan"):
        pytest.skip("this machine has an accelerator")
    assert rt.arch in ("x64", "arm64")
    assert rt.message.startswith("no cuda/vulkan device here")
    ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))


def test_bad_backend_is_refused_by_name():
    with pytest.raises(ValueError, match="backend"):
        RuntimeConfig(backend="gpu")


def test_arrays_made_before_a_reset_are_not_freed_through_the_next_program(monkeypatch):
    """ti.reset frees the old program's arrays; their Python objects, collected later, must
    not hand those dangling pointers to the new program's delete_ndarray (it frees whatever
    live array sits at that address now). Arrays of the live program still free normally."""
    import taichi as ti
    from taichi.lang import _ndarray

    ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))
    old = ti.ndarray(ti.f32, 4)
    ensure_runtime(RuntimeConfig(backend="cpu", precision="f32"))
    new = ti.ndarray(ti.f32, 4)
    freed = []

    class Program:
        delete_ndarray = staticmethod(freed.append)

    class Runtime:
        prog = Program()

    with monkeypatch.context() as m:
        m.setattr(_ndarray.impl, "get_runtime", lambda: Runtime)
        old.__del__()
        new.__del__()
    assert freed == [new.arr]
    ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))


@pytest.mark.parametrize("preset, threads", [(None, 1), ("2", 2)])
def test_torch_works_on_one_thread_on_a_small_cpu_unless_told_otherwise(preset, threads):
    """torch imported after the simulator (as every Deft command does) keeps its intra-op
    work on one thread where the CPU is small; an explicit OMP_NUM_THREADS wins."""
    import os
    import subprocess
    import sys

    from sim import SMALL_CPU

    if not SMALL_CPU:
        pytest.skip("a large CPU keeps torch's default threads")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if preset:
        env["OMP_NUM_THREADS"] = preset
    out = subprocess.run([sys.executable, "-c", "import sim, torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert int(out) == threads
