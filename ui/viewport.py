"""The 3D viewport: a pyvistaqt interactor wrapped so the rest of the UI never touches VTK.

It draws the document (entities at their poses, the tool trajectory with keyframe handles,
the robot's links) and, on top, the current frame of a run (deformed shells, particles,
pad fields, contact force arrows, the tool). Everything here runs on the GUI thread; frames
arrive from the simulation thread through queued signals, already as numpy copies.
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

from app.services.frames import Frame
from ui import geometry

SELECTION_COLOR = (1.0, 0.85, 0.1)
CAMERA_PRESETS = ("iso", "front", "top", "side")
CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a camera drag
PAD_FIELDS = ("displacement", "pressure")  # per-vertex fields a tactile pad can be coloured by
# top of each colour scale (field units: m, Pa, m/s) until a run gives its own
DEFAULT_SCALE_TOP = {"displacement": 1e-3, "pressure": 1e4, "speed": 0.1}
FIELD_COLORMAP = {"displacement": "viridis", "pressure": "viridis", "speed": "coolwarm"}
SCALE_TITLES = {"displacement": "pad displacement [m]", "pressure": "pad pressure [Pa]", "speed": "particle speed [m/s]"}
KEY_PREFIX = "keyframe:"  # keyframe handles are selected like entities, under this name
HANDLE_RADIUS = 0.015  # m
CONTACT_ARROW_M = 0.03  # the largest contact force of a frame is drawn this long
TOUCHING_N = 1e-6  # a point pressed by less than this is not in contact
# Multisampled anti-aliasing (the full-quality picture) costs ~5x a plain render on a
# software OpenGL (Mesa llvmpipe: 83 vs 15 ms at 808x496), so drafts are drawn without it.
FULL_MULTISAMPLES = 4


class Viewport(QtWidgets.QWidget):
    picked = QtCore.Signal(str)  # entity name, "" for empty space
    gizmo_released = QtCore.Signal(str, object)  # entity name, 4x4 world delta (numpy)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._plotter = QtInteractor(self, auto_update=False, multi_samples=FULL_MULTISAMPLES)
        self._plotter.set_background("#2b2f36", top="#4a5160")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._plotter.interactor)
        self._actors: dict[str, list] = {}  # entity -> its actors
        self._parts: dict[str, list[geometry.Part]] = {}
        self._rest_pose: dict[str, np.ndarray] = {}
        self._rest_opening: dict[str, float] = {}  # grippers' finger opening in the document (m)
        self._overlay: dict[str, object] = {}  # frame decorations by name
        self._selected = ""
        self._field = "displacement"
        self._scale_top = dict(DEFAULT_SCALE_TOP)
        self._luts: dict[str, pv.LookupTable] = {}  # one per field: actors and its scale bar share it
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
        self._clear_entities()
        problems = [p for entity in scene.entities for p in self._draw_entity(entity, resolve)]
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

    def _draw_entity(self, entity, resolve) -> list[str]:
        try:
            parts = geometry.entity_parts(entity, resolve)
        except (OSError, ValueError, TypeError) as exc:
            return [f"{entity.name}: not drawn ({exc})"]
        self._parts[entity.name] = parts
        self._rest_pose[entity.name] = geometry.pose_matrix(entity.transform)
        self._rest_opening[entity.name] = getattr(entity, "opening", 0.0)
        self._actors[entity.name] = [self._add_part(p, entity) for p in parts]
        return []

    def _remove_entity(self, name: str) -> None:
        for actor in self._actors.pop(name, []):
            self._plotter.remove_actor(actor, render=False)
        self._parts.pop(name, None)
        self._rest_pose.pop(name, None)
        self._rest_opening.pop(name, None)

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

    def _add(self, mesh, **style):
        """Every actor goes through here: no implicit render, the camera stays where it is."""
        return self._plotter.add_mesh(mesh, render=False, reset_camera=False, **style)

    def _add_lines(self, points: np.ndarray, color: str, width: int):
        return self._add(pv.lines_from_points(np.asarray(points)), color=color, line_width=width)

    def _add_part(self, part: geometry.Part, entity):
        visible = getattr(entity, "visible", True)
        if part.role == "particles":  # the body's colour at rest, coloured by speed in a run's frames
            actor = self._add(part.mesh, color=part.color, point_size=5, render_points_as_spheres=True)
        elif part.role == "shell":
            back = tuple(0.6 * c for c in part.color)
            actor = self._add(part.mesh, color=part.color, smooth_shading=True, backface_params={"color": back})
        elif part.role == "pad":
            part.mesh.point_data[self._field] = np.zeros(part.mesh.n_points)
            actor = self._add(part.mesh, color=part.color, smooth_shading=True)
            self._colour_by(actor, self._field)
        else:
            actor = self._add(part.mesh, color=part.color, smooth_shading=True)
        actor.SetVisibility(visible)
        return actor

    def _clear_entities(self) -> None:
        self._remove_gizmo()
        for name in list(self._actors):
            self._remove_entity(name)
        for name in list(self._overlay):
            self._drop(name)

    def _keep(self, name: str, actor) -> None:
        """An overlay (path, outline, arrows): drawn over entities, never picked by a click."""
        self._drop(name)
        actor.SetPickable(False)
        self._overlay[name] = actor

    def _drop(self, name: str) -> None:
        actor = self._overlay.pop(name, None)
        if actor is not None:
            self._plotter.remove_actor(actor, render=False)

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

    # ------------------------------------------------------------------ frames

    def set_run(self, run) -> None:
        """Colour scales span the whole run (None: the defaults), so scrubbing compares
        frames on one scale."""
        tops = dict(DEFAULT_SCALE_TOP)
        found: dict[str, float] = {}
        for index in range(len(run) if run is not None else 0):
            for data in run[index].entities.values():
                for name, values in data.fields.items():
                    key = "speed" if name == "velocity" else name
                    if key in tops and len(values):
                        size = np.linalg.norm(values, axis=1) if np.ndim(values) == 2 else np.abs(values)
                        found[key] = max(found.get(key, 0.0), float(size.max()))
        tops.update({k: v for k, v in found.items() if v > 0})  # all zero (no contact): keep the default
        self._scale_top = tops
        for part, actor in self._part_actors():
            if part.role == "pad":
                self._colour_by(actor, self._field)

    def show_frame(self, frame: Frame | None) -> None:
        """Overlay one frame of a run (None: back to the document's rest state)."""
        for name in ("contacts", "tool"):
            self._drop(name)
        coloured: dict[str, object] = {}  # field -> an actor coloured by it in this frame
        for entity, parts in self._parts.items():
            data = frame.entities.get(entity) if frame is not None else None
            moved = np.eye(4)
            if data is not None and data.pose is not None:
                moved = np.asarray(data.pose) @ np.linalg.inv(self._rest_pose[entity])
            for part, actor in zip(parts, self._actors[entity]):
                own = frame.entities.get(part.sensor) if frame is not None and part.sensor else data  # pads: by sensor name
                if own is not None and part.role == "pad" and self._field in own.fields:
                    coloured[self._field] = actor
                if own is not None and part.role == "particles" and "velocity" in own.fields:
                    coloured["speed"] = actor
                if self._apply_entity_frame(part, actor, own):
                    actor.user_matrix = np.eye(4)  # simulated points are in world coordinates
                elif part.slide and data is not None and data.opening is not None:
                    actor.user_matrix = self._finger_matrix(entity, part.slide, data)
                else:
                    actor.user_matrix = moved
        points, forces = contact_forces(frame)
        if len(points):
            cloud = pv.PolyData(points)
            cloud["force"] = forces
            magnitude = float(np.linalg.norm(forces, axis=1).max())
            arrows = cloud.glyph(orient="force", scale="force", factor=CONTACT_ARROW_M / magnitude)
            self._keep("contacts", self._add(arrows, color="#ff5050"))
        if frame is not None and frame.tool_position is not None:
            tool = pv.Sphere(radius=0.008, center=np.asarray(frame.tool_position))
            self._keep("tool", self._add(tool, color="#50c8ff"))
        self._show_scales(coloured)
        self.render()

    @property
    def colour_scales(self) -> list[str]:
        """Titles of the colour scales on screen."""
        return list(self._plotter.scalar_bars.keys())

    def _show_scales(self, coloured: dict) -> None:
        """A colour scale for every field the frame colours something by, and no other."""
        for field, title in SCALE_TITLES.items():
            shown = title in self._plotter.scalar_bars
            if field in coloured and not shown:
                self._plotter.add_scalar_bar(title, mapper=coloured[field].mapper, render=False, n_labels=2, fmt="%.2g",
                                             title_font_size=14, label_font_size=12)
            elif field not in coloured and shown:
                self._plotter.remove_scalar_bar(title, render=False)

    def _finger_matrix(self, entity: str, side: int, data) -> np.ndarray:
        """A finger drawn at the frame's opening: moved along the gripper's own x by half the
        change of opening, then with the gripper's pose."""
        rest = self._rest_pose[entity]
        slide = np.eye(4)
        slide[0, 3] = side * (data.opening - self._rest_opening[entity]) / 2
        pose = np.asarray(data.pose) if data.pose is not None else rest
        return pose @ slide @ np.linalg.inv(rest)

    def _apply_entity_frame(self, part: geometry.Part, actor, data) -> bool:
        """Show ``data`` (an EntityFrame, None for the rest state) on one part; True when the
        part now shows the frame's own points: shell vertices, FEM surfaces, MPM particles."""
        if data is None:
            if part.rest is not None:
                part.mesh.copy_from(part.rest)
                part.rest = None
            if part.role == "particles":
                actor.mapper.ScalarVisibilityOff()
            if part.role == "pad":
                part.mesh.point_data[self._field] = np.zeros(part.mesh.n_points)
            return False
        points = np.asarray(data.points)
        simulated = len(points) > 0 and part.role in ("shell", "particles", "solid", "pad")
        if simulated:
            if part.rest is None:
                part.rest = part.mesh.copy()
            self._set_geometry(part.mesh, points, data.faces)
        if part.role == "particles" and simulated and "velocity" in data.fields:
            part.mesh.point_data["speed"] = np.linalg.norm(np.asarray(data.fields["velocity"]), axis=1)
            self._colour_by(actor, "speed")
        if part.role == "pad" and self._field in data.fields:
            values = np.asarray(data.fields[self._field])
            if len(values) == part.mesh.n_points:
                part.mesh.point_data[self._field] = values
        return simulated

    @staticmethod
    def _set_geometry(mesh: pv.PolyData, points: np.ndarray, faces: np.ndarray | None) -> None:
        """Move the points; rebuild the cells only when the frame's topology differs from the
        mesh's (the first frame after the document's own geometry), not on every frame."""
        if faces is not None and (mesh.n_points != len(points) or mesh.n_cells != len(faces)):
            mesh.copy_from(pv.PolyData.from_regular_faces(points, faces), deep=False)
        elif faces is None and mesh.n_points != len(points):
            mesh.copy_from(pv.PolyData(points), deep=False)  # particles: one vertex cell each
        else:
            mesh.points = points

    def _colour_by(self, actor, field: str) -> None:
        """Colour an actor by one point array of its mesh, on that field's scale."""
        mapper = actor.mapper
        mapper.SetScalarModeToUsePointFieldData()
        mapper.SelectColorArray(field)
        if field not in self._luts:
            self._luts[field] = pv.LookupTable(FIELD_COLORMAP[field])
        self._luts[field].scalar_range = (0.0, self._scale_top[field])
        mapper.lookup_table = self._luts[field]
        mapper.SetScalarRange(0.0, self._scale_top[field])
        mapper.ScalarVisibilityOn()

    def _part_actors(self):
        for entity, parts in self._parts.items():
            yield from zip(parts, self._actors[entity])

    def set_field(self, name: str) -> None:
        """The per-point field pads are coloured by (e.g. displacement, pressure); shown
        from the next frame on."""
        if name not in PAD_FIELDS:
            raise ValueError(f"pad field must be one of {PAD_FIELDS}, got {name!r}")
        self._field = name
        for part, actor in self._part_actors():
            if part.role == "pad":
                part.mesh.point_data[name] = np.zeros(part.mesh.n_points)
                self._colour_by(actor, name)

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
        meshes = [p.mesh for parts in self._parts.values() for p in parts]
        if meshes:
            self._plotter.reset_camera(render=False, bounds=pv.merge(meshes).bounds)
        else:
            self._plotter.reset_camera(render=False)
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


def contact_forces(frame: Frame | None) -> tuple[np.ndarray, np.ndarray]:
    """(points, forces) of a frame's contacts, (K, 3) each: its own list, and every simulated
    body's per-point ``contact_force`` (FEM pads' gel nodes) where the point is touching."""
    points, forces = [np.zeros((0, 3))], [np.zeros((0, 3))]
    if frame is not None and frame.contact_points is not None:
        points.append(np.asarray(frame.contact_points))
        forces.append(np.asarray(frame.contact_forces))
    for data in frame.entities.values() if frame is not None else ():
        force = data.fields.get("contact_force")
        if force is not None and len(force) == len(data.points):
            touching = np.linalg.norm(force, axis=1) > TOUCHING_N
            points.append(np.asarray(data.points)[touching])
            forces.append(np.asarray(force)[touching])
    return np.concatenate(points).astype(float), np.concatenate(forces).astype(float)


def save_png(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) uint8 RGB array as PNG."""
    image = np.ascontiguousarray(image[..., :3])
    h, w, _ = image.shape
    qimage = QtGui.QImage(image.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888)
    if not qimage.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
