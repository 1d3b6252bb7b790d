"""Off-screen rendering of simulated shell frames (pyvista, no Qt; Mesa EGL on headless machines).

Loaded by name from ``deft simulate --render`` (app never imports ui statically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyvista as pv


def _meshes(points: np.ndarray, triangles: list[np.ndarray], ranges) -> list[pv.PolyData]:
    out = []
    for i, tris in enumerate(triangles):
        faces = np.hstack([np.full((len(tris), 1), 3), tris]).astype(np.int64).ravel()
        out.append(pv.PolyData(points[ranges[i] : ranges[i + 1]], faces))
    return out


def render_frames(frames: list[np.ndarray], triangles: list[np.ndarray], ranges, path: Path,
                  size: tuple[int, int] = (800, 600)) -> None:
    """The last frame as a .png, or every frame as an .mp4 (camera fixed on the first frame)."""
    path = Path(path)
    plotter = pv.Plotter(off_screen=True, window_size=list(size))
    actors = [plotter.add_mesh(m, color=(0.2, 0.45, 0.8), smooth_shading=True) for m in _meshes(frames[0], triangles, ranges)]
    plotter.camera_position = "iso"
    plotter.reset_camera()
    if path.suffix.lower() == ".mp4":
        plotter.open_movie(str(path), framerate=25)
        for x in frames:
            for actor, mesh in zip(actors, _meshes(x, triangles, ranges)):
                actor.mapper.dataset.points = mesh.points
            plotter.write_frame()
    else:
        for actor, mesh in zip(actors, _meshes(frames[-1], triangles, ranges)):
            actor.mapper.dataset.points = mesh.points
        plotter.screenshot(str(path))
    plotter.close()
