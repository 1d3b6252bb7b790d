"""Outliner: the document as a tree (entities and their sensors, trajectory, task, simulation,
lab). Selecting a row selects that node everywhere (viewport highlight, inspector)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.scene import model as m

PATH_ROLE = QtCore.Qt.ItemDataRole.UserRole
SETTINGS = ("trajectory", "task", "simulation", "lab")


def node_at(scene: m.Scene, path: tuple):
    """The document node at ``path`` (keys and list indices from the scene root)."""
    node = scene
    for key in path:
        node = node[key] if isinstance(key, int) else getattr(node, key)
    return node


class Outliner(QtWidgets.QTreeWidget):
    selected = QtCore.Signal(tuple)  # path of the selected node; () for none

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Name", "Kind"])
        self.setColumnWidth(0, 170)
        self.itemSelectionChanged.connect(self._emit)
        self._quiet = False

    def show_scene(self, scene: m.Scene) -> None:
        current = self.current_path()
        self._quiet = True
        self.clear()
        entities = QtWidgets.QTreeWidgetItem(self, ["Entities", ""])
        entities.setFlags(entities.flags() & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
        for i, entity in enumerate(scene.entities):
            kind = entity.shape.kind + " / " + entity.material.kind if isinstance(entity, m.Body) else "gripper"
            item = QtWidgets.QTreeWidgetItem(entities, [entity.name, kind])
            item.setData(0, PATH_ROLE, ("entities", i))
            if not getattr(entity, "visible", True):
                item.setForeground(0, self.palette().brush(self.palette().ColorRole.PlaceholderText))
            for j, sensor in enumerate(getattr(entity, "sensors", [])):
                child = QtWidgets.QTreeWidgetItem(item, [sensor.name, f"tactile ({sensor.finger})"])
                child.setData(0, PATH_ROLE, ("entities", i, "sensors", j))
        for key in SETTINGS:
            if getattr(scene, key) is None:
                continue
            item = QtWidgets.QTreeWidgetItem(self, [key.capitalize(), "settings"])
            item.setData(0, PATH_ROLE, (key,))
            if key == "trajectory":
                for j, frame in enumerate(scene.trajectory.keyframes):
                    child = QtWidgets.QTreeWidgetItem(item, [f"keyframe {j}", f"t = {frame.time:g} s"])
                    child.setData(0, PATH_ROLE, ("trajectory", "keyframes", j))
        self.expandAll()
        self._quiet = False
        self.select_path(current, emit=False)

    def current_path(self) -> tuple:
        items = self.selectedItems()
        return tuple(items[0].data(0, PATH_ROLE) or ()) if items else ()

    def select_path(self, path: tuple, emit: bool = True) -> None:
        self._quiet = not emit
        self.clearSelection()
        it = QtWidgets.QTreeWidgetItemIterator(self)
        while it.value():
            item = it.value()
            if path and tuple(item.data(0, PATH_ROLE) or ()) == tuple(path):
                item.setSelected(True)
                self.scrollToItem(item)
                break
            it += 1
        self._quiet = False
        if emit and not path:
            self.selected.emit(())

    def _emit(self) -> None:
        if not self._quiet:
            self.selected.emit(self.current_path())
