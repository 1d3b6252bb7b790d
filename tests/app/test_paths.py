"""Asset paths resolve next to the scene, then in assets/; nothing outside those roots."""

import os

import pytest

from app.scene.paths import AssetPathError, assets_root, default_scene_path, resolve_asset


@pytest.fixture
def project(tmp_path):
    scene_dir = tmp_path / "project"
    (scene_dir / "meshes").mkdir(parents=True)
    (scene_dir / "meshes" / "mine.obj").write_text("v 0 0 0\n")
    (tmp_path / "secret.txt").write_text("no")
    return scene_dir / "scene.yaml"


def test_a_path_next_to_the_scene_wins_over_assets(project):
    (project.parent / "meshes" / "mug.obj").write_text("v 1 1 1\n")
    assert resolve_asset(project, "meshes/mug.obj") == (project.parent / "meshes" / "mug.obj").resolve()
    assert resolve_asset(project, "meshes/mine.obj") == (project.parent / "meshes" / "mine.obj").resolve()


def test_built_in_assets_are_found_from_anywhere(project):
    assert resolve_asset(project, "meshes/table.obj") == (assets_root() / "meshes" / "table.obj").resolve()
    assert resolve_asset(None, "robots/arm7.urdf") == (assets_root() / "robots" / "arm7.urdf").resolve()


def test_dotdot_inside_a_root_is_fine(project):
    assert resolve_asset(project, "meshes/../meshes/mine.obj").name == "mine.obj"
    scene = default_scene_path()  # assets/scenes/default.yaml -> assets/meshes via ..
    assert resolve_asset(scene, "../meshes/mug.obj") == (assets_root() / "meshes" / "mug.obj").resolve()


@pytest.mark.parametrize("rel", ["../secret.txt", "../../../../../../etc/passwd", "meshes/../../secret.txt"])
def test_escaping_paths_are_refused(project, rel):
    with pytest.raises(AssetPathError, match="escapes the allowed folders"):
        resolve_asset(project, rel)


@pytest.mark.parametrize("rel", ["/etc/passwd", "C:\\Windows\\win.ini", "meshes\\mine.obj", ""])
def test_absolute_and_windows_paths_are_refused(project, rel):
    with pytest.raises(AssetPathError, match="not a relative path"):
        resolve_asset(project, rel)


def test_a_symlink_out_of_the_roots_is_refused(project):
    os.symlink(project.parent.parent / "secret.txt", project.parent / "meshes" / "link.obj")
    with pytest.raises(AssetPathError, match="escapes"):
        resolve_asset(project, "meshes/link.obj")


def test_missing_files_and_folders_are_reported(project):
    with pytest.raises(AssetPathError, match="does not exist"):
        resolve_asset(project, "meshes/none.obj")
    with pytest.raises(AssetPathError, match="does not exist"):
        resolve_asset(project, "meshes")  # a folder is not an asset
