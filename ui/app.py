"""Starts the studio: one QApplication, the main window on a scene, the event loop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

from PySide6 import QtWidgets

from app.scene import model as m
from app.scene.paths import default_scene_path
from ui.main_window import MainWindow, Prompts
from ui.studio_bridge import StudioBridge


def application() -> QtWidgets.QApplication:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Deft")
    app.setOrganizationName("Deft")
    return app


def create_window(scene_path: Path | None = None, prompts: Prompts | None = None) -> MainWindow:
    """The main window on ``scene_path`` (default scene when None), or on the autosave of a
    crashed session when the user takes the offer."""
    window = MainWindow(StudioBridge(), prompts)
    if not window.offer_recovery():
        path = Path(scene_path) if scene_path else default_scene_path()
        if not window.open_file(path):
            window.set_document(m.Scene(name="untitled"), None)
    return window


def run_gui(scene_path: Path | None = None) -> int:
    app = application()
    window = create_window(scene_path)
    window.show()
    return app.exec()
