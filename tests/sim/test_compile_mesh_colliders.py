"""Kinematic mesh bodies of a scene compile into mesh colliders with their baked signed
distance grid (scaled like the body); a mesh that cannot be signed is refused, naming the
entity and the hole."""

import numpy as np
import pytest
import trimesh

from app.compile import compile_scene
from app.scene.io import load_scene
from app.scene.paths import assets_root

STONE = assets_root() / "scenes" / "cloth_on_stone.yaml"


def test_the_stone_scene_compiles_its_mesh_into_a_collider_grid():
    compiled = compile_scene(load_scene(STONE), STONE, 2)
    assert compiled.skipped == ()
    stone = next(c for c in compiled.spec.colliders if c.name == "stone")
    assert stone.shape == "mesh"
    mesh = trimesh.load(assets_root() / "meshes" / "stone.obj", force="mesh")
    sdf = stone.sdf
    # the grid covers the mesh, negative at its centre, zero on its surface (the spline
    # rounds the coarse mesh's corners off a little)
    assert np.all(np.asarray(sdf.origin) < mesh.bounds[0])
    assert sdf.interpolate(mesh.centroid[None])[0] < -0.01
    assert np.abs(sdf.interpolate(mesh.triangles_center)).max() < 0.15 * sdf.cell
    assert np.abs(sdf.interpolate(mesh.vertices)).max() < 0.3 * sdf.cell


def test_a_scaled_mesh_body_is_baked_at_its_scale_and_an_open_one_is_refused(tmp_path):
    box = trimesh.creation.box(extents=(0.02, 0.02, 0.02))
    box.export(tmp_path / "box.obj")
    trimesh.Trimesh(box.vertices, box.faces[2:]).export(tmp_path / "open.obj")
    text = STONE.read_text().replace("meshes/stone.obj", "box.obj").replace(
        "path: box.obj}", "path: box.obj, scale: [2.0, 1.0, 1.0]}")
    (tmp_path / "scene.yaml").write_text(text)
    sdf = next(c for c in compile_scene(load_scene(tmp_path / "scene.yaml"), tmp_path / "scene.yaml", 2).spec.colliders
               if c.name == "stone").sdf
    assert sdf.interpolate(np.array([[0.019, 0.0, 0.0], [0.0, 0.0, 0.009]])) == pytest.approx([-0.001, -0.001], abs=1e-9)
    (tmp_path / "scene.yaml").write_text(STONE.read_text().replace("meshes/stone.obj", "open.obj"))
    with pytest.raises(ValueError, match=r"entity 'stone' \(open.obj\): is not watertight: \d+ edges border a hole"):
        compile_scene(load_scene(tmp_path / "scene.yaml"), tmp_path / "scene.yaml", 2)
