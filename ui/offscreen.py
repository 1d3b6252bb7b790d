"""Off-screen pictures of a simulated run (pyvista, no Qt; Mesa EGL on headless machines):
the whole scene as the studio's viewport draws it (ui.scene_drawing), with the run's frames.

Loaded by name from ``deft simulate --render`` (app never imports ui statically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyvista as pv

from app.scene.paths import resolve_asset
from ui.recorder import VIDEO_FPS
from ui.scene_drawing import SceneDrawing


class _OffscreenScene(SceneDrawing):
    def __init__(self, scene, scene_path: Path | None, size: tuple[int, int]) -> None:
        self._init_drawing(pv.Plotter(off_screen=True, window_size=list(size)))
        self._plotter.set_background("#2b2f36", top="#4a5160")
        self.problems = self.draw_entities(scene, lambda rel: resolve_asset(scene_path, rel))
        self._plotter.camera_position = "iso"
        self._frame_entities()

    def render(self) -> None:
        """Nothing to repaint: each picture is rendered when it is taken."""

    def picture(self, frame, path: Path | None = None) -> np.ndarray:
        """The scene at ``frame`` as an (H, W, 3) array; also written as PNG to ``path``."""
        self.show_frame(frame)
        return self._plotter.screenshot(str(path) if path is not None else None, return_img=True)

    def close(self) -> None:
        self._plotter.close()


def render_run(scene, scene_path: Path | None, frames: list, path: Path, size: tuple[int, int] = (800, 600)) -> list[str]:
    """The scene at the run's last frame as a .png, or at every frame as an .mp4 (the camera
    fixed on the whole scene, from the iso direction). Returns one message per entity that
    could not be drawn."""
    path = Path(path)
    view = _OffscreenScene(scene, scene_path, size)
    try:
        if path.suffix.lower() == ".mp4":
            import imageio_ffmpeg

            width, height = (size[0] // 2) * 2, (size[1] // 2) * 2  # H.264 needs even sizes
            writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=VIDEO_FPS, macro_block_size=2)
            writer.send(None)  # start ffmpeg
            try:
                for frame in frames:
                    writer.send(np.ascontiguousarray(view.picture(frame)[:height, :width]))
            finally:
                writer.close()
        else:
            view.picture(frames[-1], path)
    finally:
        view.close()
    return view.problems
