"""Fixtures that drive the real studio window inside the virtual X server (pytest-xvfb).

Each test gets its own config folder (layout, recent files, autosaves), scripted answers to
the window's questions, and a window that is closed (and its simulation thread stopped)
afterwards, so no widget or thread leaks from one test to the next.
"""

from __future__ import annotations

import os

import pytest

from studio_helpers import settle

os.environ.setdefault("QT_API", "pyside6")


class ScriptedPrompts:
    """Answers the window's questions from queues the test fills; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.save_answers: list[str] = []
        self.restore_answers: list[bool] = []
        self.paths: list[str] = []
        self.errors: list[str] = []

    def save_changes(self, parent, name):
        self.asked.append(f"save changes to {name}")
        return self.save_answers.pop(0) if self.save_answers else "discard"

    def restore_recovery(self, parent, original, when):
        self.asked.append(f"restore {original}")
        return self.restore_answers.pop(0) if self.restore_answers else False

    def open_path(self, parent, caption, folder, filters):
        self.asked.append(caption)
        return self.paths.pop(0) if self.paths else ""

    save_path = open_path

    def error(self, parent, title, text):
        self.errors.append(f"{title}: {text}")


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    folder = tmp_path / "config"
    monkeypatch.setenv("DEFT_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def prompts():
    return ScriptedPrompts()


@pytest.fixture
def open_window(qtbot, config_dir, prompts):
    """open_window(scene_path=None) -> a shown MainWindow; all are closed at teardown."""
    from ui.app import application, create_window

    application()
    windows = []

    def make(scene_path=None, size=(1400, 900)):
        window = create_window(scene_path, prompts)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()  # window shortcuts (Ctrl+Z...) need the active window
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        settle(qtbot)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.stack is not None:
            window.stack.set_clean()
            window._unsaved_restore = False
        window.close()
