"""The layer rules of shared/DESIGN.md, checked on the real packages."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _assert_python_succeeds(code: str) -> None:
    """Run ``code`` in a fresh interpreter at the repository root; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_app_sim_robot_load_no_qt():
    code = (
        "import sys, importlib, pkgutil\n"
        "for root in ('app', 'sim', 'robot'):\n"
        "    pkg = importlib.import_module(root)\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, root + '.'):\n"
        "        if '.ros2' in m.name: continue\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'vtk', 'vtkmodules', 'pyvista', 'pyvistaqt', 'pyqtgraph', 'rclpy'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    _assert_python_succeeds(code)


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_robot_ros2_imports_rclpy():
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "robot").rglob("*.py")
        if "ros2" not in p.relative_to(REPO / "robot").parts and "rclpy" in _imported_roots(p)
    ]
    assert offenders == []


def test_only_sim_runtime_calls_ti_init():
    callers = []
    for pkg in ("app", "sim", "robot", "ui"):
        for p in (REPO / pkg).rglob("*.py"):
            if "ti.init(" in p.read_text():
                callers.append(str(p.relative_to(REPO)))
    assert callers == ["sim/runtime.py"]


def test_a_forward_shell_world_does_not_load_torch():
    """torch is for gradients (sim.rollout, optimizers); importing it is ~1.5 s of a warm start."""
    code = (
        "import sys\n"
        "from sim.bench.shells import pinched_sheet\n"
        "from sim.world import World\n"
        "World(pinched_sheet(5, 2)).step()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3]); sys.exit('torch' in sys.modules)\n"
    )
    _assert_python_succeeds(code)
