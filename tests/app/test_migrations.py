"""Version 1 scene files load as the version 2 scene they describe; their problems keep lines."""

from pathlib import Path

import pytest

from app.scene.io import SceneError, load_scene, save_scene, scene_from_text
from app.scene.migrations import migrate

DATA = Path(__file__).parent / "data"


def _dump(scene):
    return scene.model_dump(mode="json")


def test_v1_file_migrates_to_the_equivalent_v2_scene():
    old = load_scene(DATA / "scene_v1.yaml")
    new = load_scene(DATA / "scene_v2_equivalent.yaml")
    old_rot, new_rot = old.entity("block").transform.rotation, new.entity("block").transform.rotation
    assert old_rot == pytest.approx(new_rot, abs=1e-12)
    old.entity("block").transform.rotation = new_rot  # euler -> quaternion is exact up to rounding
    assert _dump(old) == _dump(new)
    assert old.schema_version == 2
    assert [s.name for _, s in old.sensors()] == ["pad"]
    assert old.simulation.horizon == 300


def test_migrated_scene_saves_as_v2(tmp_path):
    target = tmp_path / "migrated.yaml"
    save_scene(load_scene(DATA / "scene_v1.yaml"), target)
    text = target.read_text()
    assert text.startswith("schema_version: 2\n") and "objects:" not in text
    assert _dump(load_scene(target)) == _dump(load_scene(DATA / "scene_v1.yaml"))


def test_v1_problems_point_at_the_v1_lines():
    text = (DATA / "scene_v1.yaml").read_text().replace("nu: 0.45", "nu: 0.7")
    with pytest.raises(SceneError) as err:
        scene_from_text(text, "v1.yaml")
    (problem,) = err.value.problems
    assert (problem.line, problem.path) == (10, "entities.1.material.poisson_ratio")


def test_v1_sensor_of_an_unknown_gripper_is_reported():
    text = (DATA / "scene_v1.yaml").read_text().replace("gripper: hand", "gripper: claw")
    with pytest.raises(SceneError) as err:
        scene_from_text(text, "v1.yaml")
    assert str(err.value) == "v1.yaml:18: sensors.0.gripper: names no gripper (expected the name of a gripper)"


def test_v1_file_with_both_old_and_new_names_is_refused():
    text = (DATA / "scene_v1.yaml").read_text().replace("E: 1.0e+5,", "E: 1.0e+5, youngs_modulus: 2.0e+5,")
    with pytest.raises(SceneError, match=r"v1.yaml:10: objects.1.material.E: both 'E'"):
        scene_from_text(text, "v1.yaml")


@pytest.mark.parametrize("version", [0, -1, "two", True, 2.5])
def test_nonsense_versions_are_refused(version):
    with pytest.raises(ValueError, match="is not a version"):
        migrate({"schema_version": version})


def test_current_version_passes_unchanged():
    data = {"schema_version": 2, "name": "x"}
    assert migrate(dict(data)) == (data, 2)
