"""`deft simulate --render` (the headless main job's picture): the whole scene as the
studio's viewport draws it, at the run's last frame, not only the shells."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyvista as pv

from app.compile import compile_scene
from app.scene.io import load_scene
from app.scene.paths import assets_root
from app.services.frames import EntityFrame, Frame
from studio_helpers import image_difference
from ui.offscreen import render_run

CLOTH_ONLY = assets_root() / "scenes" / "cloth_only.yaml"


def _picture(path) -> np.ndarray:
    image = pv.read(path)
    w, h, _ = image.dimensions
    return np.asarray(image.point_data.active_scalars).reshape(h, w, -1)[::-1, :, :3]  # VTK's rows run bottom-up


def _red(picture: np.ndarray) -> np.ndarray:
    r, g, b = (picture[..., i].astype(int) for i in range(3))
    return (r > 100) & (r > 2 * g) & (r > 2 * b)


def test_the_picture_shows_every_entity_at_the_runs_last_frame(tmp_path):
    # the command, in its own process (this one's Taichi belongs to the studio tests' thread)
    deft = subprocess.run([str(Path(sys.executable).with_name("deft")), "simulate", str(CLOTH_ONLY), "--render",
                           str(tmp_path / "cli.png"), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert deft.returncode == 0, deft.stderr
    scene = load_scene(CLOTH_ONLY)
    rest = compile_scene(scene, CLOTH_ONLY).spec.shells[0].vertices
    landed = rest - (0.0, 0.0, rest[0, 2] - 0.001)  # where the run leaves it: on the ground

    def frame(points) -> Frame:
        return Frame(0, 0.0, {"cloth": EntityFrame(points=np.asarray(points, np.float32))})

    # the cloth in red, so that where it lies shows against the grey ground
    red = scene.model_copy(update={"entities": [e.model_copy(update={"color": (1.0, 0.0, 0.0)}) if e.name == "cloth" else e
                                                for e in scene.entities]})
    assert render_run(red, CLOTH_ONLY, [frame(rest), frame(landed)], tmp_path / "last.png") == []
    picture = _picture(tmp_path / "last.png")
    assert image_difference(_picture(tmp_path / "cli.png"), picture) < 0.05  # the command's: the same but the cloth's colour
    # the ground box is drawn (the shells-only picture had nothing but the cloth) ...
    no_ground = red.model_copy(update={"entities": [e for e in red.entities if e.name != "ground"]})
    render_run(no_ground, CLOTH_ONLY, [frame(landed)], tmp_path / "no_ground.png")
    assert image_difference(picture, _picture(tmp_path / "no_ground.png")) > 0.05
    # ... and the cloth where the last frame has it: 5 cm lower than at the start
    render_run(red, CLOTH_ONLY, [frame(rest)], tmp_path / "first.png")
    rows = [np.nonzero(_red(p))[0] for p in (_picture(tmp_path / "first.png"), picture)]
    assert min(len(r) for r in rows) > 1000  # pixels of cloth in both pictures
    assert rows[1].mean() > rows[0].mean() + 10  # lower on the screen at the end


def test_a_video_has_a_picture_per_frame(tmp_path):
    from imageio_ffmpeg import count_frames_and_secs

    scene = load_scene(CLOTH_ONLY)
    rest = compile_scene(scene, CLOTH_ONLY).spec.shells[0].vertices
    frames = [Frame(i, 0.01 * i, {"cloth": EntityFrame(points=np.asarray(rest - (0, 0, 0.01 * i), np.float32))})
              for i in range(5)]
    assert render_run(scene, CLOTH_ONLY, frames, tmp_path / "run.mp4") == []
    assert count_frames_and_secs(str(tmp_path / "run.mp4"))[0] == 5
