"""The studio's main window: viewport in the middle, dockable panels around it, every action
in a menu (frequent ones with a shortcut shown there), the document behind the undo stack.

The window never edits the scene directly: every change is a command pushed on the stack
(``push``), and the views are refreshed from the stack's change notification.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.commands import edits
from app.scene import model as m
from app.scene.io import SceneError, load_scene, save_scene, scene_from_text, scene_to_text
from app.scene.paths import AssetPathError, default_scene_path, resolve_asset
from app.services.frames import Run
from app.services.user_files import Autosave, RecentFiles, config_dir
from ui.deploy_panel import DeployPanel
from ui.history import HistoryView
from ui.inspector import Inspector, describe_error
from ui.optimize_panel import OptimizePanel
from ui.outliner import Outliner, node_at
from ui.palette import ITEMS as PALETTE_ITEMS
from ui.palette import Palette, PaletteItem, make_from_file
from ui.tactile_panel import TactilePanel
from ui.timeline import Timeline
from ui.scene_drawing import PAD_FIELDS
from ui.viewport import CAMERA_PRESETS, KEY_PREFIX, Viewport

AUTOSAVE_MS = 60_000
SETTINGS_VERSION = 1


class Prompts:
    """The window's questions to the user; tests replace it with scripted answers."""

    def save_changes(self, parent, name: str) -> str:
        """'save', 'discard' or 'cancel'."""
        buttons = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            parent, "Unsaved changes", f"Save the changes to {name} before closing?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save,
        )
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def restore_recovery(self, parent, original: str, when: str) -> bool:
        buttons = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            parent, "Recover unsaved work",
            f"Deft did not close cleanly last time. Restore the autosave of {original} from {when}?",
            buttons.Yes | buttons.No, buttons.Yes,
        )
        return answer == buttons.Yes

    def open_path(self, parent, caption: str, folder: str, filters: str) -> str:
        return QtWidgets.QFileDialog.getOpenFileName(parent, caption, folder, filters)[0]

    def save_path(self, parent, caption: str, folder: str, filters: str) -> str:
        return QtWidgets.QFileDialog.getSaveFileName(parent, caption, folder, filters)[0]

    def error(self, parent, title: str, text: str) -> None:
        QtWidgets.QMessageBox.warning(parent, title, text)


def studio_settings() -> QtCore.QSettings:
    """Window layout and view options, kept with the user's other Deft files."""
    return QtCore.QSettings(str(config_dir() / "studio.ini"), QtCore.QSettings.Format.IniFormat)


class MainWindow(QtWidgets.QMainWindow):
    document_changed = QtCore.Signal()

    def __init__(self, services, prompts: Prompts | None = None) -> None:
        super().__init__()
        self.services = services  # app.services.studio.StudioServices
        self.prompts = prompts or Prompts()
        self.recent = RecentFiles()
        self.autosave = Autosave()
        self.path: Path | None = None
        self.stack = None
        self._unsaved_restore = False
        self._closed = False
        self.run: Run | None = None
        self._selection: tuple = ()
        self.setWindowTitle("Deft")
        self.setDockOptions(self.dockOptions() | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks)

        self.viewport = Viewport(self)
        self.setCentralWidget(self.viewport)
        self.outliner = Outliner()
        self.inspector = Inspector(self.set_field)
        self.palette = Palette()
        self.history = HistoryView()
        self.timeline = Timeline()
        self.optimize_panel = OptimizePanel(self.set_field)
        self.tactile_panel = TactilePanel()
        self.deploy_panel = DeployPanel()
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self._build_docks()
        self._build_actions()
        from ui.deploy_controller import DeployController

        self.deploy = DeployController(self)
        self._connect()
        self.statusBar().showMessage("ready")

        self._autosave_timer = QtCore.QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.write_autosave)
        self._autosave_timer.start()
        self._restore_layout()

    # ------------------------------------------------------------------ layout

    def _dock(self, key: str, title: str, widget: QtWidgets.QWidget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")  # saveState() keys docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def _build_docks(self) -> None:
        area = QtCore.Qt.DockWidgetArea
        outliner = self._dock("outliner", "Outliner", self.outliner, area.LeftDockWidgetArea)
        palette = self._dock("palette", "Add", self.palette, area.LeftDockWidgetArea)
        self.tabifyDockWidget(outliner, palette)
        outliner.raise_()
        inspector = self._dock("inspector", "Inspector", self.inspector, area.RightDockWidgetArea)
        history = self._dock("history", "Undo history", self.history, area.RightDockWidgetArea)
        self.tabifyDockWidget(inspector, history)
        inspector.raise_()
        timeline = self._dock("timeline", "Timeline", self.timeline, area.BottomDockWidgetArea)
        optimize = self._dock("optimize", "Optimization", self.optimize_panel, area.BottomDockWidgetArea)
        tactile = self._dock("tactile", "Tactile", self.tactile_panel, area.BottomDockWidgetArea)
        deploy = self._dock("deploy", "Deploy", self.deploy_panel, area.BottomDockWidgetArea)
        for d in (optimize, tactile, deploy):
            self.tabifyDockWidget(timeline, d)
        timeline.raise_()
        self.resizeDocks([outliner, inspector], [240, 340], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([timeline], [260], QtCore.Qt.Orientation.Vertical)

    def _action(self, menu: QtWidgets.QMenu, text: str, slot: Callable, shortcut=None, checkable=False,
                context=QtCore.Qt.ShortcutContext.WindowShortcut) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
            action.setShortcutContext(context)
        action.setCheckable(checkable)
        action.triggered.connect(slot if checkable else (lambda _=False: slot()))
        menu.addAction(action)
        self.addAction(action)  # shortcuts work while the menu bar is hidden too
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        keys = QtGui.QKeySequence.StandardKey
        self.actions_by_name: dict[str, QtGui.QAction] = {}
        a = self.actions_by_name

        file = bar.addMenu("&File")
        a["open"] = self._action(file, "&Open…", self.open_dialog, keys.Open)
        self.recent_menu = file.addMenu("Open &recent")
        a["save"] = self._action(file, "&Save", self.save, keys.Save)
        a["save_as"] = self._action(file, "Save &as…", self.save_as, "Ctrl+Shift+S")
        file.addSeparator()
        a["screenshot"] = self._action(file, "Save viewport &screenshot…", self.screenshot_dialog, "F12")
        a["record"] = self._action(file, "Record run as &video…", self.record_dialog, "Ctrl+Shift+R")
        file.addSeparator()
        a["quit"] = self._action(file, "&Quit", self.close, keys.Quit)

        edit = bar.addMenu("&Edit")
        a["undo"] = self._action(edit, "&Undo", self.undo, "Ctrl+Z")
        a["redo"] = self._action(edit, "&Redo", self.redo, "Ctrl+Shift+Z")
        edit.addSeparator()
        a["duplicate"] = self._action(edit, "&Duplicate", self.duplicate_selected, "Ctrl+D")
        a["delete"] = self._action(edit, "De&lete", self.delete_selected, QtCore.Qt.Key.Key_Delete)
        add = edit.addMenu("&Add")
        for item in PALETTE_ITEMS:
            self._action(add, item.label, lambda it=item: self.add_from_palette(it))

        view = bar.addMenu("&View")
        for i, preset in enumerate(CAMERA_PRESETS, start=1):
            a[f"camera_{preset}"] = self._action(
                view, f"Camera: {preset}", lambda p=preset: self.viewport.camera_preset(p), f"Alt+{i}"
            )
        a["fit"] = self._action(view, "&Fit to view", self.viewport.fit, "F")
        a["grid"] = self._action(view, "Show &grid", self.viewport.set_grid_visible, "G", checkable=True)
        a["axes"] = self._action(view, "Show &axes", self.viewport.set_axes_visible, checkable=True)
        a["grid"].setChecked(True)
        a["axes"].setChecked(True)
        pad_menu = view.addMenu("Colour &pads by")
        pad_group = QtGui.QActionGroup(self)
        for field in PAD_FIELDS:
            a[f"pad_{field}"] = self._action(pad_menu, field, lambda on, f=field: on and self._colour_pads(f), checkable=True)
            pad_group.addAction(a[f"pad_{field}"])
        a[f"pad_{PAD_FIELDS[0]}"].setChecked(True)
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())

        sim = bar.addMenu("&Simulate")
        a["simulate"] = self._action(sim, "&Simulate scene", self.simulate, "Ctrl+R")
        a["stop_simulation"] = self._action(sim, "Stop s&imulation", self.services.stop_simulation, "Ctrl+Shift+.")
        a["play"] = self._action(sim, "&Play / pause", self.toggle_play, "Space")
        a["step"] = self._action(sim, "Step &forward", lambda: self.timeline.step(1), ".")
        a["step_back"] = self._action(sim, "Step &back", lambda: self.timeline.step(-1), ",")
        a["loop"] = self._action(sim, "&Loop playback", self.timeline.loop_box.setChecked, "L", checkable=True)
        a["add_key"] = self._action(sim, "Add &keyframe at current time", self.add_keyframe_now, "K")
        sim.addSeparator()
        a["optimize"] = self._action(sim, "&Optimize", self.start_optimization, "Ctrl+Shift+O")
        a["stop_optimize"] = self._action(sim, "S&top optimization", self.stop_optimization, "Ctrl+.")
        a["resume_optimize"] = self._action(sim, "&Resume optimization", self.resume_optimization)

        robot = bar.addMenu("&Robot")
        a["connect"] = self._action(robot, "&Connect to lab", self.deploy_panel.connect_requested.emit)
        a["dry_run"] = self._action(robot, "&Dry-run (pre-flight check)", self.deploy_panel.dry_run_requested.emit)
        a["arm"] = self._action(robot, "&Arm", self.deploy_panel.arm_requested.emit)
        a["execute"] = self._action(
            robot, "&Execute", lambda: self.deploy_panel.execute_requested.emit(self.deploy_panel.speed.value())
        )
        a["stop_motion"] = self._action(
            robot, "&STOP motion", self.deploy_panel.stop_requested.emit, QtCore.Qt.Key.Key_Escape,
            context=QtCore.Qt.ShortcutContext.ApplicationShortcut,
        )

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About Deft", self.about)
        self._refresh_recent_menu()

    def _connect(self) -> None:
        self.outliner.selected.connect(self.select_path)
        self.viewport.picked.connect(self._picked)
        self.viewport.gizmo_released.connect(self._gizmo_moved)
        self.palette.requested.connect(self.add_from_palette)
        self.history.jump_requested.connect(self.jump_history)
        self.timeline.frame_changed.connect(self._show_run_frame)
        self.timeline.add_key_requested.connect(self.add_keyframe_at)
        self.timeline.move_key_requested.connect(self.move_keyframe)
        self.timeline.delete_key_requested.connect(self.delete_keyframe)
        self.optimize_panel.start_requested.connect(self.start_optimization)
        self.optimize_panel.stop_requested.connect(self.stop_optimization)
        self.optimize_panel.resume_requested.connect(self.resume_optimization)
        self.services.connect_window(self)

    def _restore_layout(self) -> None:
        settings = studio_settings()
        geometry = settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = settings.value("state")
        if state is not None:
            self.restoreState(state, SETTINGS_VERSION)
        grid = settings.value("grid", True, type=bool)
        self.actions_by_name["grid"].setChecked(grid)
        self.viewport.set_grid_visible(grid)

    def save_layout(self) -> None:
        settings = studio_settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState(SETTINGS_VERSION))
        settings.setValue("grid", self.actions_by_name["grid"].isChecked())
        settings.sync()

    # ------------------------------------------------------------------ document

    @property
    def scene(self) -> m.Scene:
        return self.stack.scene

    def set_document(self, scene: m.Scene, path: Path | None, dirty: bool = False) -> None:
        from app.commands import UndoStack

        if self.stack is not None:
            self.stack.document_changed.disconnect(self._on_stack_changed)
            self.stack.state_changed.disconnect(self._on_stack_state)
        self.stack = UndoStack(scene)
        self._unsaved_restore = dirty  # a restored autosave differs from every file on disk
        self.stack.document_changed.connect(self._on_stack_changed)
        self.stack.state_changed.connect(self._on_stack_state)
        self.path = Path(path) if path else None
        self._selection = ()
        self.set_run(None)
        self.services.document_replaced(scene)
        self._refresh_views(camera=True)

    def open_file(self, path: Path) -> bool:
        try:
            scene = load_scene(path)
        except (SceneError, OSError) as exc:
            self.prompts.error(self, "Cannot open scene", f"{path}:\n{exc}")
            return False
        self.set_document(scene, path)
        if Path(path).resolve() != default_scene_path().resolve():  # the default is always one click away
            self.recent.add(path)
            self._refresh_recent_menu()
        self.statusBar().showMessage(f"opened {path}")
        return True

    def resolve(self, rel: str) -> Path:
        return resolve_asset(self.path, rel)

    def _on_stack_changed(self, paths) -> None:
        self._refresh_views(camera=False, paths=[tuple(p) for p in paths])
        self.services.document_edited(self.scene)

    def _on_stack_state(self) -> None:
        self.history.show_history(self.stack.texts(), self.stack.index)
        self.setWindowModified(self.dirty)
        a = self.actions_by_name
        a["undo"].setEnabled(self.stack.can_undo)
        a["redo"].setEnabled(self.stack.can_redo)
        a["undo"].setText(f"&Undo {self.stack.undo_text}" if self.stack.can_undo else "&Undo")
        a["redo"].setText(f"&Redo {self.stack.redo_text}" if self.stack.can_redo else "&Redo")

    def _refresh_views(self, camera: bool, paths: list[tuple] | None = None) -> None:
        scene = self.scene
        problems = self._redraw(paths)
        if camera:
            self.viewport.camera_preset("iso")
        self.outliner.show_scene(scene)
        self._select(self._selection if self._valid_path(self._selection) else ())
        self.optimize_panel.show_task(scene.task)
        self.tactile_panel.set_pads([s.name for _, s in scene.sensors()])
        if scene.trajectory is not None:
            times = [k.time for k in scene.trajectory.keyframes]
            self.timeline.set_keyframes(times, times[-1] if times else 0.0)
        else:
            self.timeline.set_keyframes([], 0.0)
        if self.run is not None:
            self._show_run_frame(self.timeline.index)
        name = self.path.name if self.path else f"{scene.name} (not saved)"
        self.setWindowTitle(f"{name}[*] — Deft")
        self._on_stack_state()
        if problems:
            self.statusBar().showMessage("; ".join(problems))
        self.document_changed.emit()

    def _redraw(self, paths: list[tuple] | None) -> list[str]:
        """Redraw what the changed ``paths`` touch (None: everything)."""
        entities = set()
        for path in paths if paths is not None else [()]:
            if path[:1] in (("task",), ("simulation",), ("lab",), ("name",), ("description",)):
                continue
            if path[:1] == ("trajectory",):
                self.viewport.show_trajectory(self.scene.trajectory)
                continue
            if len(path) >= 3 and path[0] == "entities" and path[2] != "name":
                entities.add(path[1])
                continue
            return self.viewport.show_scene(self.scene, self.resolve)  # entities added, removed, renamed
        return [p for i in sorted(entities) for p in self.viewport.update_entity(self.scene.entities[i], self.resolve)]

    @property
    def dirty(self) -> bool:
        return self.stack is not None and (self._unsaved_restore or not self.stack.is_clean)

    # ------------------------------------------------------------------ edits

    def push(self, command) -> bool:
        """Do ``command`` through the undo stack; on refusal show why and change nothing."""
        try:
            self.stack.push(command)
        except (ValueError, KeyError, TypeError) as exc:
            self.statusBar().showMessage(f"not applied: {describe_error(exc)}")
            return False
        return True

    def set_field(self, path: tuple, value: Any, merge_id: str | None = None) -> None:
        """Inspector edits: raises with the reason when the value is refused."""
        self.stack.push(edits.SetField(path, value, merge_id=merge_id))

    def undo(self) -> None:
        if self.stack.can_undo:
            self.stack.undo()

    def redo(self) -> None:
        if self.stack.can_redo:
            self.stack.redo()

    def jump_history(self, applied: int) -> None:
        while self.stack.index > applied and self.stack.can_undo:
            self.stack.undo()
        while self.stack.index < applied and self.stack.can_redo:
            self.stack.redo()

    def add_from_palette(self, item: PaletteItem) -> None:
        name = edits.unique_name(self.scene, item.base_name)
        if item.needs_file:
            chosen = self.prompts.open_path(self, f"Add {item.label.rstrip('…')}", str(self._folder()), item.needs_file)
            if not chosen:
                return
            try:
                entity = make_from_file(item, name, self._relative_asset(Path(chosen)))
            except (ValueError, AssetPathError) as exc:
                self.prompts.error(self, "Cannot add", describe_error(exc))
                return
        else:
            entity = item.make(name)
        if self.push(edits.add_entity(entity)):
            self.select_entity(name)

    def _relative_asset(self, chosen: Path) -> str:
        """A picked file as a path the scene may reference (next to the scene or in assets/)."""
        from app.scene.paths import assets_root

        roots = [self.path.parent] if self.path else []
        roots.append(assets_root())
        for root in roots:
            if chosen.resolve().is_relative_to(root.resolve()):
                rel = chosen.resolve().relative_to(root.resolve()).as_posix()
                resolve_asset(self.path, rel)
                return rel
        raise ValueError(f"{chosen} is outside the scene's folder and assets/ (copy it there first)")

    def selected_entity(self) -> str:
        if len(self._selection) >= 2 and self._selection[0] == "entities":
            return self.scene.entities[self._selection[1]].name
        return ""

    def duplicate_selected(self) -> None:
        name = self.selected_entity()
        if not name:
            self.statusBar().showMessage("select an entity to duplicate")
            return
        command = edits.duplicate_entity(self.scene, name)
        if self.push(command):
            self.select_entity(self.scene.entities[command.index].name)

    def delete_selected(self) -> None:
        name = self.selected_entity()
        if not name:
            self.statusBar().showMessage("select an entity to delete")
            return
        self._selection = ()
        self.push(edits.remove_entity(self.scene, name))

    def _gizmo_moved(self, name: str, delta: np.ndarray) -> None:
        from scipy.spatial.transform import Rotation

        from ui.geometry import pose_matrix

        if name.startswith(KEY_PREFIX):  # the tool target of a keyframe, dragged in the viewport
            i = int(name.removeprefix(KEY_PREFIX))
            key = self.scene.trajectory.keyframes[i].model_dump()
            key["position"] = tuple(float(v) for v in (delta @ np.array([*key["position"], 1.0]))[:3])
            if not self.push(edits.set_keyframe(i, key, merge_id=f"key-drag:{i}")):
                self.viewport.show_trajectory(self.scene.trajectory)
            return
        i = edits.entity_index(self.scene, name)
        pose = delta @ pose_matrix(self.scene.entities[i].transform)
        quat = Rotation.from_matrix(pose[:3, :3]).as_quat(scalar_first=True)
        value = {"position": tuple(float(v) for v in pose[:3, 3]), "rotation": tuple(float(v) for v in quat)}
        if not self.push(edits.SetField(("entities", i, "transform"), value, merge_id=f"gizmo:{name}", text=f"move {name}")):
            self.viewport.show_scene(self.scene, self.resolve)  # put the refused drag back

    # ------------------------------------------------------------------ keyframes

    def add_keyframe_now(self) -> None:
        self.add_keyframe_at(self.timeline.current_time())

    def add_keyframe_at(self, time: float) -> None:
        trajectory = self.scene.trajectory
        if trajectory is None:
            self.statusBar().showMessage("the scene has no trajectory: add a gripper and set trajectory.tool first")
            return
        keys = trajectory.keyframes
        position, opening = self._tool_state_at(time)
        if any(abs(k.time - time) < 1e-9 for k in keys):
            self.statusBar().showMessage(f"a keyframe already exists at {time:g} s")
            return
        self.push(edits.add_keyframe(self.scene, m.Keyframe(time=time, position=position, opening=opening)))

    def _tool_state_at(self, time: float) -> tuple[tuple, float]:
        """Where the tool is at ``time``: from the run when there is one, else the keyframes."""
        keys = self.scene.trajectory.keyframes
        if self.run is not None and len(self.run):
            frame = self.run[self.run.index_at(time)]
            if frame.tool_position is not None:
                return tuple(float(v) for v in frame.tool_position), keys[-1].opening if keys else 0.08
        if not keys:
            return (0.0, 0.0, 0.2), 0.08
        times = np.array([k.time for k in keys])
        pos = np.array([k.position for k in keys])
        return tuple(float(np.interp(time, times, pos[:, i])) for i in range(3)), float(
            np.interp(time, times, [k.opening for k in keys])
        )

    def move_keyframe(self, index: int, time: float) -> None:
        keys = self.scene.trajectory.keyframes
        data = keys[index].model_dump()
        data["time"] = time
        self.push(edits.set_keyframe(index, data, merge_id=f"key-time:{index}"))

    def delete_keyframe(self, index: int) -> None:
        self.push(edits.remove_keyframe(index))

    # ------------------------------------------------------------------ selection

    def _valid_path(self, path: tuple) -> bool:
        try:
            node_at(self.scene, path)
        except (IndexError, AttributeError, KeyError, TypeError):
            return False
        return True

    def select_entity(self, name: str) -> None:
        self.select_path(("entities", edits.entity_index(self.scene, name)) if name else ())

    def select_path(self, path: tuple) -> None:
        self._select(tuple(path))

    def _select(self, path: tuple) -> None:
        self._selection = path
        self.outliner.select_path(path, emit=False)
        entity = self.selected_entity()
        if path[:2] == ("trajectory", "keyframes") and len(path) == 3:
            entity = f"{KEY_PREFIX}{path[2]}"
        if self.viewport.selected != entity:
            self.viewport.select(entity)
        node = node_at(self.scene, path) if path else None
        title = getattr(node, "name", None) or " ".join(map(str, path))
        self.inspector.show_node(node, path, title)

    def _picked(self, name: str) -> None:
        if name.startswith(KEY_PREFIX):
            self.select_path(("trajectory", "keyframes", int(name.removeprefix(KEY_PREFIX))))
        else:
            self.select_entity(name)

    # ------------------------------------------------------------------ runs and timeline

    def set_run(self, run: Run | None) -> None:
        self.run = run
        self.viewport.set_run(run)  # colour scales first: the timeline shows the run's first frame
        self.timeline.set_run(run)
        self.tactile_panel.set_run(run)
        if run is None:
            self.viewport.show_frame(None)
            self.viewport.show_preview_path(None)

    def _show_run_frame(self, index: int) -> None:
        if self.run is None or not len(self.run):
            return
        self.viewport.show_frame(self.run[index])
        self.tactile_panel.show_index(index)

    def _colour_pads(self, field: str) -> None:
        self.viewport.set_field(field)
        self.viewport.show_frame(self.run[self.timeline.index] if self.run is not None and len(self.run) else None)

    def toggle_play(self) -> None:
        if self.timeline.playing:
            self.timeline.pause()
        else:
            self.timeline.play()

    def simulate(self) -> None:
        self.services.simulate(self.scene, self.path)

    def start_optimization(self) -> None:
        self.docks["optimize"].raise_()  # the live curves are what the user watches now
        self.services.optimize(self.scene, self.path, resume=False)

    def resume_optimization(self) -> None:
        self.docks["optimize"].raise_()
        self.services.optimize(self.scene, self.path, resume=True)

    def stop_optimization(self) -> None:
        self.services.stop_optimization()

    # ------------------------------------------------------------------ files

    def _folder(self) -> Path:
        return self.path.parent if self.path else default_scene_path().parent

    def open_dialog(self) -> None:
        if not self._maybe_save():
            return
        chosen = self.prompts.open_path(self, "Open scene", str(self._folder()), "Scenes (*.yaml *.yml)")
        if chosen:
            self.open_file(Path(chosen))

    def save(self) -> bool:
        if self.path is None or self.path.resolve() == default_scene_path().resolve():
            return self.save_as()  # the built-in default stays as shipped
        return self._save_to(self.path)

    def save_as(self) -> bool:
        chosen = self.prompts.save_path(self, "Save scene as", str(self._folder()), "Scenes (*.yaml)")
        if not chosen:
            return False
        path = Path(chosen)
        if path.suffix not in (".yaml", ".yml"):
            path = path.with_suffix(".yaml")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        try:
            save_scene(self.scene, path)
        except (OSError, ValueError) as exc:
            self.prompts.error(self, "Cannot save", f"{path}: {exc}")
            return False
        self.path = path
        self._unsaved_restore = False
        self.stack.set_clean()
        self.recent.add(path)
        self._refresh_recent_menu()
        self.statusBar().showMessage(f"saved {path}")
        self._refresh_views(camera=False)
        return True

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent.list()
        for path in files:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _=False, p=path: self._open_recent(p))
        self.recent_menu.setEnabled(bool(files))

    def _open_recent(self, path: Path) -> None:
        if self._maybe_save():
            self.open_file(path)

    def _maybe_save(self) -> bool:
        """True when it is fine to drop the current document."""
        if not self.dirty:
            return True
        answer = self.prompts.save_changes(self, self.path.name if self.path else self.scene.name)
        if answer == "save":
            return self.save()
        return answer == "discard"

    def write_autosave(self) -> None:
        if self.dirty:
            self.autosave.save(scene_to_text(self.scene), self.path)

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest autosave; True when it was restored."""
        for recovery in self.autosave.orphans():
            when = QtCore.QDateTime.fromSecsSinceEpoch(int(recovery.saved_at)).toString()
            original = str(recovery.original) if recovery.original else "an unsaved scene"
            restore = self.prompts.restore_recovery(self, original, when)
            if restore:
                try:
                    scene = scene_from_text(recovery.text.read_text(encoding="utf-8"), str(recovery.text), recovery.original)
                except (SceneError, OSError) as exc:
                    self.prompts.error(self, "Cannot restore", str(exc))
                    return False
                self.set_document(scene, recovery.original, dirty=True)
                self.autosave.discard(recovery)
                self.statusBar().showMessage(f"restored the autosave of {original}: save it to keep it")
                return True
            self.autosave.discard(recovery)
        return False

    # ------------------------------------------------------------------ recording

    def screenshot_dialog(self) -> None:
        chosen = self.prompts.save_path(self, "Save screenshot", str(Path.cwd()), "PNG images (*.png)")
        if chosen:
            self.viewport.screenshot(Path(chosen).with_suffix(".png"))
            self.statusBar().showMessage(f"saved {chosen}")

    def record_dialog(self) -> None:
        if self.run is None or not len(self.run):
            self.statusBar().showMessage("nothing to record: simulate or optimize first")
            return
        chosen = self.prompts.save_path(self, "Record run", str(Path.cwd()), "MP4 video (*.mp4)")
        if chosen:
            from ui.recorder import record_run

            frames = record_run(self, Path(chosen).with_suffix(".mp4"))
            self.statusBar().showMessage(f"recorded {frames} frames to {chosen}")

    def about(self) -> None:
        QtWidgets.QMessageBox.about(
            self, "About Deft",
            "Deft: a studio for differentiable robotic manipulation of deformables.\n"
            f"Simulation: {self.services.runtime_message()}",
        )

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if self._closed:
            event.accept()
            return
        if not self._maybe_save():
            event.ignore()
            return
        self._closed = True
        self.save_layout()
        self._autosave_timer.stop()
        self.autosave.end_session()
        self.services.shutdown()
        self.deploy.shutdown()
        self.viewport.close_viewport()
        event.accept()
