"""Drawing a scene and the frames of a run with pyvista, without Qt: the entities at their
poses, and over them a frame's deformed shells, FEM surfaces, particles, pad fields, tool
and contact force arrows. The studio's viewport (ui.viewport) draws through it on its Qt
interactor, ``deft simulate --render`` (ui.offscreen) on an off-screen plotter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyvista as pv

from app.services.frames import Frame
from ui import geometry

PAD_FIELDS = ("displacement", "pressure")  # per-vertex fields a tactile pad can be coloured by
# top of each colour scale (field units: m, Pa, m/s) until a run gives its own
DEFAULT_SCALE_TOP = {"displacement": 1e-3, "pressure": 1e4, "speed": 0.1}
FIELD_COLORMAP = {"displacement": "viridis", "pressure": "viridis", "speed": "coolwarm"}
SCALE_TITLES = {"displacement": "pad displacement [m]", "pressure": "pad pressure [Pa]", "speed": "particle speed [m/s]"}
CONTACT_ARROW_M = 0.03  # the largest contact force of a frame is drawn this long
TOUCHING_N = 1e-6  # a point pressed by less than this is not in contact


class SceneDrawing:
    """Entities and run frames on ``self._plotter``; the class using it calls
    ``_init_drawing`` with its plotter and provides ``render``."""

    def _init_drawing(self, plotter) -> None:
        self._plotter = plotter
        self._actors: dict[str, list] = {}  # entity -> its actors
        self._parts: dict[str, list[geometry.Part]] = {}
        self._rest_pose: dict[str, np.ndarray] = {}
        self._rest_opening: dict[str, float] = {}  # grippers' finger opening in the document (m)
        self._overlay: dict[str, object] = {}  # frame decorations by name
        self._field = "displacement"
        self._scale_top = dict(DEFAULT_SCALE_TOP)
        self._luts: dict[str, pv.LookupTable] = {}  # one per field: actors and its scale bar share it

    def render(self) -> None:
        raise NotImplementedError

    def draw_entities(self, scene, resolve: Callable[[str], Path]) -> list[str]:
        """Draw every entity of ``scene`` (after clearing); one message per entity that could
        not be drawn."""
        self._clear_entities()
        return [p for entity in scene.entities for p in self._draw_entity(entity, resolve)]

    def _frame_entities(self) -> None:
        """Point the camera so that every entity is in view."""
        meshes = [p.mesh for parts in self._parts.values() for p in parts]
        if meshes:
            self._plotter.reset_camera(render=False, bounds=pv.merge(meshes).bounds)
        else:
            self._plotter.reset_camera(render=False)

    def _clear_entities(self) -> None:
        for name in list(self._actors):
            self._remove_entity(name)
        for name in list(self._overlay):
            self._drop(name)

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

    def _keep(self, name: str, actor) -> None:
        """An overlay (path, outline, arrows): drawn over entities, never picked by a click."""
        self._drop(name)
        actor.SetPickable(False)
        self._overlay[name] = actor

    def _drop(self, name: str) -> None:
        actor = self._overlay.pop(name, None)
        if actor is not None:
            self._plotter.remove_actor(actor, render=False)

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
