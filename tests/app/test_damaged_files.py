"""`deft validate` on damaged scene files: exit 2, every problem as FILE:LINE: field: what
(expected), never a traceback. Driven through the real typer app, plus real processes."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from app.scene.io import MAX_SCENE_BYTES

DEFT = Path(sys.executable).with_name("deft")

# a small valid scene; the cases below damage it and rely on its line numbers
BASE = """\
schema_version: 2
name: base
entities:
  - name: table
    shape: {kind: box, size: [1.0, 1.0, 0.05]}
  - name: block
    shape: {kind: box, size: [0.05, 0.05, 0.05]}
    material: {kind: fem_elastic, density: 1000.0, youngs_modulus: 1.0e+5, poisson_ratio: 0.3}
    transform: {position: [0, 0, 0.15]}
  - name: sheet
    shape: {kind: cloth, size: [0.2, 0.2], resolution: [8, 8]}
    material: {kind: shell, thickness: 0.001}
  - name: mug
    shape: {kind: mesh, path: meshes/mug.obj}
  - type: gripper
    name: hand
    sensors:
      - {name: pad, finger: left}
trajectory:
  tool: hand
  keyframes:
    - {time: 0.0, position: [0, 0, 0.2]}
    - {time: 0.5, position: [0, 0, 0.1]}
simulation:
  dt: 0.001
  horizon: 100
"""


def damaged(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


# (case, file text, line, field path of the problem); "" path: a whole-file problem
CASES = [
    ("unknown field", damaged("  horizon: 100\n", "  horizon: 100\n  horizn: 5\n"), 27, "simulation.horizn"),
    ("wrong type", damaged("horizon: 100", "horizon: many"), 26, "simulation.horizon"),
    ("float for an int", damaged("horizon: 100", "horizon: 10.5"), 26, "simulation.horizon"),
    ("NaN", damaged("dt: 0.001", "dt: .nan"), 25, "simulation.dt"),
    ("infinity", damaged("youngs_modulus: 1.0e+5", "youngs_modulus: .inf"), 8, "entities.1.material.youngs_modulus"),
    ("negative density", damaged("density: 1000.0", "density: -5.0"), 8, "entities.1.material.density"),
    ("zero modulus", damaged("youngs_modulus: 1.0e+5", "youngs_modulus: 0"), 8, "entities.1.material.youngs_modulus"),
    ("Poisson ratio 0.5", damaged("poisson_ratio: 0.3", "poisson_ratio: 0.5"), 8, "entities.1.material.poisson_ratio"),
    ("negative Poisson ratio", damaged("poisson_ratio: 0.3", "poisson_ratio: -0.1"), 8,
     "entities.1.material.poisson_ratio"),
    ("zero thickness", damaged("thickness: 0.001", "thickness: 0.0"), 12, "entities.2.material.thickness"),
    ("dt zero", damaged("dt: 0.001", "dt: 0"), 25, "simulation.dt"),
    ("dt negative", damaged("dt: 0.001", "dt: -0.001"), 25, "simulation.dt"),
    ("missing asset", damaged("meshes/mug.obj", "meshes/nothing.obj"), 14, "entities.3.shape.path"),
    ("escaping asset path", damaged("meshes/mug.obj", "../../../../etc/passwd"), 14, "entities.3.shape.path"),
    ("absolute asset path", damaged("meshes/mug.obj", "/etc/passwd"), 14, "entities.3.shape.path"),
    ("duplicate entity names", damaged("name: block", "name: table"), 6, "entities.1.name"),
    ("sensor named like an entity", damaged("name: pad,", "name: mug,"), 18, "entities.4.sensors.0.name"),
    ("unknown shape kind", damaged("{kind: box, size: [1.0", "{kind: cube, size: [1.0"), 5, "entities.0.shape"),
    ("unknown material kind", damaged("kind: fem_elastic", "kind: jelly"), 8, "entities.1.material"),
    ("shape without a kind", damaged("{kind: box, size: [1.0", "{size: [1.0"), 5, "entities.0.shape"),
    ("unknown entity type", damaged("type: gripper", "type: robot"), 15, "entities.4"),
    ("vector too short", damaged("position: [0, 0, 0.15]}", "position: [0, 0]}"), 9, "entities.1.transform.position.2"),
    ("zero quaternion", damaged("position: [0, 0, 0.15]}", "position: [0, 0, 0.15], rotation: [0, 0, 0, 0]}"), 9,
     "entities.1.transform.rotation"),
    ("keyframe times not increasing", damaged("time: 0.5", "time: 0.0"), 21, "trajectory.keyframes"),
    ("trajectory tool names nothing", damaged("tool: hand", "tool: ghost"), 20, "trajectory.tool"),
    ("cloth shape with a rigid material", damaged("kind: shell, thickness: 0.001", "kind: rigid"), 10, "entities.2"),
    ("gripper opening beyond its range", damaged("    name: hand\n", "    name: hand\n    opening: 0.5\n"), 15,
     "entities.4"),
    ("cloth resolution too small", damaged("resolution: [8, 8]", "resolution: [1, 8]"), 11,
     "entities.2.shape.resolution.0"),
    ("required field missing", damaged("  - name: sheet\n", "  - color: [1, 1, 1]\n"), 10, "entities.2.name"),
    ("value not among the choices", BASE + "  precision: f16\n", 27, "simulation.precision"),
    ("tactile topic for no sensor", BASE + "lab: {tactile_topics: {ghost: /tactile/ghost}}\n", 27,
     "lab.tactile_topics.ghost"),
    ("non-standard baud rate", BASE + "lab:\n  gripper_serial: {port: /dev/ttyUSB0, baud: 1234}\n", 28,
     "lab.gripper_serial.baud"),
    ("missing schema_version", BASE.replace("schema_version: 2\n", "# no version\n"), 2, "schema_version"),
    ("schema_version from the future", damaged("schema_version: 2", "schema_version: 9"), 1, "schema_version"),
    ("empty file", "", 1, ""),
    ("only a comment", "# nothing here\n", 1, ""),
    ("top level is a list", "- a\n- b\n", 1, ""),
    ("YAML syntax error", damaged("position: [0, 0, 0.15]}", "position: [0, 0, 0.15}"), 9, ""),
    ("duplicate YAML key", damaged("  dt: 0.001\n", "  dt: 0.001\n  dt: 0.002\n"), 26, ""),
    ("YAML alias", damaged("name: base", "name: &n base\ndescription: *n"), 2, ""),
    ("nested too deeply", damaged("name: base", "name: " + "[" * 5000 + "]" * 5000), 1, ""),
    ("number as a key", damaged("  horizon: 100\n", "  horizon: 100\n  7: seven\n"), 27, ""),
    ("entity that is not a mapping", damaged("  - name: table\n    shape: {kind: box, size: [1.0, 1.0, 0.05]}\n",
                                             "  - table\n    \n"), 4, "entities.0"),
    ("version 1 file with objects not a list", "schema_version: 1\nobjects: 3\n", 2, "objects"),
    ("python object tag", damaged("name: base", "name: !!python/object/apply:os.system ['true']"), 2, ""),
]


@pytest.fixture(scope="module")
def cli():
    return build_cli()


def test_the_base_text_is_valid(cli, tmp_path):
    f = tmp_path / "base.yaml"
    f.write_text(BASE)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{f}: ok: scene 'base', 4 bodies, 1 grippers, 1 tactile sensors")


@pytest.mark.parametrize("case, text, line, path", CASES, ids=[c[0] for c in CASES])
def test_damaged_file_gives_exit_2_and_the_line_and_field(cli, tmp_path, case, text, line, path):
    f = tmp_path / "scene.yaml"
    f.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    problems = result.output.strip().splitlines()
    prefix = f"{f}:{line}: {path}: " if path else f"{f}:{line}: "
    assert any(p.startswith(prefix) for p in problems), (prefix, result.output)
    assert all(p.startswith(f"{f}:") and "(expected" in p for p in problems), result.output


def test_binary_garbage_is_rejected(cli, tmp_path):
    f = tmp_path / "garbage.yaml"
    f.write_bytes(bytes(range(256)) * 4)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{f}:1: binary data")


def test_invalid_utf8_is_reported_at_its_line(cli, tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(BASE.replace("name: base", "name: b\xe4se").encode("latin-1"))
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.output.startswith(f"{f}:2: binary data at byte")


def test_oversized_file_is_rejected_unread(cli, tmp_path):
    f = tmp_path / "huge.yaml"
    f.write_text(BASE + "#" * MAX_SCENE_BYTES)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert f"{f}:1: file is" in result.output and f"at most {MAX_SCENE_BYTES} bytes" in result.output


def test_every_problem_of_a_file_is_listed(cli, tmp_path):
    f = tmp_path / "many.yaml"
    f.write_text(BASE.replace("dt: 0.001", "dt: 0").replace("poisson_ratio: 0.3", "poisson_ratio: 0.7"))
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert f"{f}:25: simulation.dt: " in result.output
    assert f"{f}:8: entities.1.material.poisson_ratio: " in result.output


def test_directory_and_missing_file(cli, tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path), str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert f"{tmp_path}:1: not a file" in result.output
    assert f"{tmp_path / 'absent.yaml'}:1: cannot read" in result.output


def test_real_process_mixed_files(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BASE)
    bad.write_text(BASE.replace("horizon: 100", "horizon: -3"))
    done = subprocess.run([str(DEFT), "validate", str(good), str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{good}: ok: ")
    assert lines[1] == f"{bad}:26: simulation.horizon: -3 is invalid (expected greater than or equal to 1)"
    assert "Traceback" not in done.stdout + done.stderr


def test_real_process_binary_file(tmp_path):
    f = tmp_path / "noise.yaml"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    done = subprocess.run([str(DEFT), "validate", str(f)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout.startswith(f"{f}:1: binary data")
    assert "Traceback" not in done.stdout + done.stderr


def test_unknown_field_lists_the_allowed_ones_and_suggests_the_closest(cli, tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text(BASE.replace("  - name: mug\n", "  - name: mug\n    colour: [1, 0, 0]\n"))
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.output == (
        f"{f}:14: entities.3.colour: unknown field (expected one of: color, material, name, shape, transform, "
        "type, visible; did you mean 'color'?)\n"
    )


def test_a_checker_bug_is_one_line_not_a_traceback(cli, tmp_path, monkeypatch):
    from app.scene import io

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(io, "asset_problems", broken)
    f = tmp_path / "s.yaml"
    f.write_text(BASE)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.output == (
        f"{f}:1: could not be checked: ZeroDivisionError: division by zero "
        "(expected a clean verdict; please report this as a Deft bug)\n"
    )
