"""Undo history: every command on the stack, the current one highlighted; click to go there."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class HistoryView(QtWidgets.QListWidget):
    jump_requested = QtCore.Signal(int)  # number of commands that should stay applied

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.itemClicked.connect(lambda item: self.jump_requested.emit(self.row(item)))

    def show_history(self, labels: list[str], applied: int) -> None:
        """``labels`` of every command, oldest first; the first ``applied`` are done."""
        self.clear()
        self.addItem("(opened)")
        for i, label in enumerate(labels):
            item = QtWidgets.QListWidgetItem(label)
            if i >= applied:
                item.setForeground(QtGui.QBrush(QtGui.QColor("#7d858f")))
                font = item.font()
                font.setItalic(True)
                item.setFont(font)
            self.addItem(item)
        self.setCurrentRow(applied)
