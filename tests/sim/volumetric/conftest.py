import pytest

from sim.runtime import RuntimeConfig, ensure_runtime


@pytest.fixture(scope="session", autouse=True)
def f64_runtime():
    """Every volumetric test runs on the CPU in float64 (gradient checks need it)."""
    return ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))
