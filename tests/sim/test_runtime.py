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
