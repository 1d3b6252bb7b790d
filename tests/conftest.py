"""Process-wide test environment: private, loopback-only ROS 2; a shared kernel cache."""

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("DEFT_CACHE_DIR", str(REPO / ".cache"))
# ROS 2 traffic never leaves loopback, on a domain of our own.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(60 + os.getpid() % 40))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="deft-roslog-"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

ARTIFACTS = REPO / "artifacts"

# Property tests judge results, not speed: a loaded CI machine must not fail them on
# hypothesis' timing health checks.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("deft", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deft")


def pytest_collection_modifyitems(items):
    """ROS tests time real controller processes over loopback; on a loaded 2-core machine the
    DDS delivery to this process sometimes stalls for a second. Each must still pass, on a
    rerun at most twice."""
    for item in items:
        if item.get_closest_marker("ros") is not None:
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))


def pytest_terminal_summary(terminalreporter):
    """Why each rerun test failed first: without this a flaky timing shows only as an R."""
    for report in terminalreporter.stats.get("rerun", []):
        terminalreporter.section(f"first failure of rerun {report.nodeid}", sep="-")
        terminalreporter.line("\n".join(report.longreprtext.splitlines()[-25:]))
