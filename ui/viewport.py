"""The 3D viewport: a pyvistaqt interactor wrapped so the rest of the UI never touches VTK.

It draws the document (entities at their poses, the tool trajectory with keyframe handles,
the robot's links) and, on top, the current frame of a run (deformed shells, particles,
pad fields, contact force arrows, the tool), the entities and frames through
ui.scene_drawing (which ``deft simulate --render`` shares), and adds selection, the gizmo
and the camera. Everything here runs on the GUI thread; frames arrive from the simulation
thread through queued signals, already as numpy copies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

os.environ.setdefault("QT_API", "pyside6")  # pyvistaqt reads it at import

import numpy as np
import pyvista as pv
from pyvistaqt import QtInteractor
from PySide6 import QtCore, QtGui, QtWidgets
from vtkmodules.vtkRenderingCore import vtkPropPicker

from ui import geometry
from ui.scene_drawing import SceneDrawing

SELECTION_COLOR = (1.0, 0.85, 0.1)
CAMERA_PRESETS = ("iso", "front", "top", "side")
CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a camera drag
KEY_PREFIX = "keyframe:"  # keyframe handles are selected like entities, under this name
HANDLE_RADIUS = 0.015  # m
# Multisampled anti-aliasing (the full-quality picture) costs ~5x a plain render on a
# software OpenGL (Mesa llvmpipe: 83 vs 15 ms at 808x496), so drafts are drawn without it.
FULL_MULTISAMPLES = 4


class Viewport(QtWidgets.QWidget, SceneDrawing):
    picked = QtCore.Signal(str)  # entity name, "" for empty space
    gizmo_released = QtCore.Signal(str, object)  # entity name, 4x4 world delta (numpy)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._init_drawing(QtInteractor(self, auto_update=False, multi_samples=FULL_MULTISAMPLES))
        self._plotter.set_background("#2b2f36", top="#4a5160")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plotter.interactor)
        self._selected = ""
        self._gizmo = None
        self._grid_actor = None
        self._press_pos: tuple[int, int] | None = None
        self._plotter.add_axes()
        self.set_grid_visible(True)
        iren = self._plotter.iren
        iren.add_observer("LeftButtonPressEvent", self._on_press)
        iren.add_observer("LeftButtonReleaseEvent", self._on_release)

    # ------------------------------------------------------------------ document

    def show_scene(self, scene, resolve: Callable[[str], Path]) -> list[str]:
        """Redraw every entity of ``scene``; returns one message per entity that could not be drawn."""
        problems = self.draw_entities(scene, resolve)
        self.show_trajectory(scene.trajectory, render=False)
        self._apply_selection()
        self.render()
        return problems

    def update_entity(self, entity, resolve: Callable[[str], Path]) -> list[str]:
        """Redraw one entity after an edit of its fields (same name)."""
        self._remove_gizmo()
        self._remove_entity(entity.name)
        problems = self._draw_entity(entity, resolve)
        self._apply_selection()
        self.render()
        return problems

    def show_trajectory(self, trajectory, render: bool = True) -> None:
        """The tool path, and a handle at every keyframe that a click selects and the gizmo drags."""
        self._drop("trajectory")
        for name in [n for n in self._actors if n.startswith(KEY_PREFIX)]:
            self._remove_entity(name)
        if trajectory is not None and trajectory.keyframes:
            keys, path = geometry.trajectory_path(trajectory)
            if len(path) > 1:
                self._keep("trajectory", self._add_lines(path, "#50c8ff", 3))
            for i, point in enumerate(keys):
                name = f"{KEY_PREFIX}{i}"
                part = geometry.Part(name, "handle", pv.Sphere(radius=HANDLE_RADIUS, center=point), (0.31, 0.78, 1.0))
                self._parts[name] = [part]
                self._rest_pose[name] = np.eye(4)
                self._actors[name] = [self._add(part.mesh, color=part.color, smooth_shading=True)]
        if self._selected.startswith(KEY_PREFIX):
            self._apply_selection()
        if render:
            self.render()

    def _clear_entities(self) -> None:
        self._remove_gizmo()
        super()._clear_entities()

    def show_preview_path(self, points: np.ndarray | None) -> None:
        """The best trajectory found so far by an optimization, drawn over the planned one
        (None: remove it)."""
        if points is None or len(points) < 2:
            self._drop("preview_path")
        elif "preview_path" in self._overlay and self._overlay["preview_path"].mapper.dataset.n_points == len(points):
            self._overlay["preview_path"].mapper.dataset.points = np.asarray(points)  # same path length: move it
        else:
            self._keep("preview_path", self._add_lines(points, "#ffa040", 4))
        self.render()

    # ------------------------------------------------------------------ selection

    @property
    def selected(self) -> str:
        return self._selected

    def select(self, name: str) -> None:
        self._selected = name if name in self._actors else ""
        self._apply_selection()
        self.render()

    def _apply_selection(self) -> None:
        self._drop("selection")
        self._remove_gizmo()
        parts = self._parts.get(self._selected)
        if not parts:
            return
        outline = pv.merge([p.mesh for p in parts]).outline()
        self._keep("selection", self._add(outline, color=SELECTION_COLOR, line_width=3))
        if self._gizmo_enabled:
            self._add_gizmo()

    _gizmo_enabled = True

    def _add_gizmo(self) -> None:
        actors = self._actors[self._selected]
        main = actors[0]
        name = self._selected
        bounds = np.array(pv.merge([p.mesh for p in self._parts[name]]).bounds).reshape(3, 2)
        origin = tuple(bounds.mean(axis=1))
        rest = {id(a): a.user_matrix for a in actors}

        def follow(matrix) -> None:  # the other parts of the entity move with the main one
            for a in actors[1:]:
                a.user_matrix = np.asarray(matrix) @ rest[id(a)]

        def released(matrix) -> None:
            follow(matrix)
            delta = np.asarray(main.user_matrix, dtype=float)
            if not np.allclose(delta, np.eye(4)):
                self.gizmo_released.emit(name, delta.copy())

        scale = 3.0 if name.startswith(KEY_PREFIX) else 0.5  # a handle is small: longer arrows
        self._gizmo = self._plotter.add_affine_transform_widget(
            main, origin=origin, scale=scale, interact_callback=follow, release_callback=released
        )

    def _remove_gizmo(self) -> None:
        if self._gizmo is not None:
            self._gizmo.remove()
            self._gizmo = None

    def gizmo_handle(self, axis: int, kind: str = "arrow") -> np.ndarray:
        """World point on the gizmo's translate arrow (or rotate ring) of ``axis``; for tests and hints."""
        if self._gizmo is None:
            raise RuntimeError("no gizmo: select an entity first")
        if kind == "arrow":  # near the tip: the shaft may be hidden inside the entity
            actor = self._gizmo._arrows[axis]
            origin = np.asarray(self._gizmo.origin)
            tip = np.array(actor.GetBounds()).reshape(3, 2)[axis, 1]
            point = origin.copy()
            point[axis] += 0.85 * (tip - origin[axis])
            return point
        return np.array(self._gizmo._circles[axis].GetCenter())

    def world_to_display(self, point) -> tuple[int, int]:
        """Widget pixel (Qt coordinates, origin top-left) where a world point is drawn."""
        renderer = self._plotter.renderer
        renderer.SetWorldPoint(*point, 1.0)
        renderer.WorldToDisplay()
        x, y, _ = renderer.GetDisplayPoint()
        ratio = self._plotter.interactor.devicePixelRatioF()
        return int(round(x / ratio)), int(round(self._plotter.interactor.height() - y / ratio))

    def entity_center(self, name: str) -> np.ndarray:
        return np.array(pv.merge([p.mesh for p in self._parts[name]]).center)

    def _on_press(self, *_args) -> None:
        self._press_pos = self._plotter.iren.get_event_position()

    def _on_release(self, *_args) -> None:
        if self._press_pos is None:
            return
        x, y = self._plotter.iren.get_event_position()
        moved = max(abs(x - self._press_pos[0]), abs(y - self._press_pos[1]))
        self._press_pos = None
        if moved > CLICK_SLOP_PX or (self._gizmo is not None and self._gizmo._selected_actor is not None):
            return
        picker = vtkPropPicker()
        picker.Pick(x, y, 0, self._plotter.renderer)
        actor = picker.GetActor()
        hit = next((name for name, actors in self._actors.items() if actor is not None and any(a is actor for a in actors)), "")
        self.picked.emit(hit)

    # ------------------------------------------------------------------ view

    def camera_preset(self, name: str) -> None:
        views = {
            "iso": self._plotter.view_isometric,
            "front": self._plotter.view_xz,
            "top": self._plotter.view_xy,
            "side": self._plotter.view_yz,
        }
        if name not in views:
            raise ValueError(f"camera preset must be one of {CAMERA_PRESETS}, got {name!r}")
        views[name](render=False)
        self.fit()

    @property
    def camera(self) -> tuple:
        """(position, focal point, view up) of the camera."""
        return tuple(tuple(v) for v in self._plotter.camera_position)

    @camera.setter
    def camera(self, value: tuple) -> None:
        self._plotter.camera_position = [tuple(v) for v in value]
        self.render()

    def fit(self) -> None:
        """Frame every entity (the floor grid does not count)."""
        self._frame_entities()
        self.render()

    def set_grid_visible(self, visible: bool) -> None:
        if visible and self._grid_actor is None:
            floor = pv.Plane(i_size=1.0, j_size=1.0, i_resolution=10, j_resolution=10)
            self._grid_actor = self._plotter.add_mesh(
                floor, style="wireframe", color="#8891a0", opacity=0.5, pickable=False, render=False,
                reset_camera=False,
            )
        if self._grid_actor is not None:
            self._grid_actor.SetVisibility(visible)
        self.render()

    def set_axes_visible(self, visible: bool) -> None:
        if visible:
            self._plotter.show_axes()
        else:
            self._plotter.hide_axes()
        self.render()

    @property
    def draft(self) -> bool:
        """Whether the viewport draws cheap pictures (no anti-aliasing)."""
        return self._plotter.render_window.GetMultiSamples() == 0

    def set_draft(self, draft: bool) -> None:
        """Cheap pictures while the viewport must follow something (an optimization's
        previews) without freezing the window; the full-quality picture again after."""
        if draft != self.draft:
            self._plotter.render_window.SetMultiSamples(0 if draft else FULL_MULTISAMPLES)
            self.render()

    def render(self) -> None:
        """Ask for a repaint. The widget renders the scene on every paint, so rendering here
        too drew each change twice; several changes within one pass of the event loop now
        cost one render (a software-GL render took 100-800 ms on the loaded test machine)."""
        QtWidgets.QWidget.update(self._plotter.interactor)

    def screenshot(self, path: Path | None = None) -> np.ndarray:
        """The current picture as an (H, W, 3) uint8 array; also written as PNG when ``path`` is given."""
        self._plotter.render()
        image = self._plotter.screenshot(return_img=True)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            save_png(image, Path(path))
        return image

    def close_viewport(self) -> None:
        self._clear_entities()
        self._plotter.close()


def save_png(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) uint8 RGB array as PNG."""
    image = np.ascontiguousarray(image[..., :3])
    h, w, _ = image.shape
    qimage = QtGui.QImage(image.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    if not qimage.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
