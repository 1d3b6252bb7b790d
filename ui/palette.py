"""Palette: what can be added to a scene, each as a ready-to-edit document entity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6 import QtCore, QtWidgets

from app.scene import model as m


def unique_name(base: str, taken: list[str]) -> str:
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


@dataclass(frozen=True)
class PaletteItem:
    label: str
    base_name: str
    make: Callable[[str], m.Body | m.Gripper]  # name -> entity
    needs_file: str = ""  # file dialog filter when the item is made from a file


ABOVE_TABLE = m.Transform(position=(0.0, 0.0, 0.1))

ITEMS = (
    PaletteItem("Box", "box", lambda n: m.Body(name=n, shape=m.BoxShape(), transform=ABOVE_TABLE)),
    PaletteItem("Sphere", "sphere", lambda n: m.Body(name=n, shape=m.SphereShape(), transform=ABOVE_TABLE)),
    PaletteItem("Cylinder", "cylinder", lambda n: m.Body(name=n, shape=m.CylinderShape(), transform=ABOVE_TABLE)),
    PaletteItem("Capsule", "capsule", lambda n: m.Body(name=n, shape=m.CapsuleShape(), transform=ABOVE_TABLE)),
    PaletteItem(
        "Cloth sheet", "cloth",
        lambda n: m.Body(name=n, shape=m.ClothShape(), material=m.ThinShell(), transform=ABOVE_TABLE, color=(0.3, 0.5, 0.9)),
    ),
    PaletteItem(
        "Soft body (FEM)", "soft",
        lambda n: m.Body(name=n, shape=m.BoxShape(size=(0.06, 0.06, 0.06)), material=m.FemElastic(),
                         transform=ABOVE_TABLE, color=(0.9, 0.5, 0.6)),
    ),
    PaletteItem(
        "Plastic body (MPM)", "dough",
        lambda n: m.Body(name=n, shape=m.SphereShape(radius=0.04), material=m.MpmElastoplastic(),
                         transform=ABOVE_TABLE, color=(0.9, 0.75, 0.5)),
    ),
    PaletteItem(
        "Fluid volume (MPM)", "fluid",
        lambda n: m.Body(name=n, shape=m.BoxShape(size=(0.05, 0.05, 0.05)), material=m.MpmFluid(),
                         transform=ABOVE_TABLE, color=(0.3, 0.6, 1.0)),
    ),
    PaletteItem(
        "Gripper with tactile pads", "gripper",
        lambda n: m.Gripper(
            name=n, transform=m.Transform(position=(0.0, 0.0, 0.25)),
            sensors=[m.TactileSensor(name=f"{n}_pad_left", finger="left"),
                     m.TactileSensor(name=f"{n}_pad_right", finger="right")],
        ),
    ),
    PaletteItem("Mesh from file…", "mesh", lambda n: None, needs_file="Meshes (*.obj *.stl *.ply)"),
    PaletteItem("Robot from URDF…", "robot", lambda n: None, needs_file="Robots (*.urdf)"),
)


def make_from_file(item: PaletteItem, name: str, relative_path: str) -> m.Body:
    if item.base_name == "mesh":
        return m.Body(name=name, shape=m.MeshShape(path=relative_path), transform=ABOVE_TABLE)
    return m.Body(name=name, shape=m.UrdfShape(path=relative_path))


class Palette(QtWidgets.QWidget):
    """A column of buttons; each asks the window to add one item."""

    requested = QtCore.Signal(object)  # PaletteItem

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        for item in ITEMS:
            button = QtWidgets.QPushButton(item.label)
            button.clicked.connect(lambda _=False, it=item: self.requested.emit(it))
            layout.addWidget(button)
            self.buttons[item.label] = button
        layout.addStretch(1)
