"""Extension modules mapped ahead of their import (the interpreter lock released meanwhile)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_taichi_core_is_mapped_but_not_imported():
    out = run_python("""
        import sys
        from pathlib import Path
        from app.services.native_libraries import preload_extensions

        def mapped():
            return "taichi_python" in Path("/proc/self/maps").read_text()

        before = mapped()
        loaded = preload_extensions("taichi")
        print(before, loaded, mapped(), "taichi" in sys.modules)
        import taichi  # finds the library mapped already, and still works
        print(taichi.__version__ is not None, preload_extensions("taichi"))
    """)
    first, second = [line for line in out.splitlines() if not line.startswith("[Taichi]")]
    assert first == "False 1 True False"
    assert second == "True 0"  # already imported: nothing to do


def test_missing_and_pure_python_packages_are_left_alone():
    out = run_python("""
        import sys
        from app.services.native_libraries import preload_extensions
        print(preload_extensions("no_such_package_deft"), preload_extensions("typer"), "typer" in sys.modules)
    """)
    assert out.split() == ["0", "0", "False"]
