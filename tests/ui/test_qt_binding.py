"""The Qt binding keeps Python's reference counts: PySide6 6.12.0 released a reference to
None on every call that returned it, and Python 3.11 (where None is not immortal) aborted
with "deallocating None" once a session had made as many calls as None had references."""

from __future__ import annotations

import sys

from PySide6 import QtCore, QtWidgets


def test_calls_returning_none_keep_none_alive(qapp):
    label = QtWidgets.QLabel()
    before = sys.getrefcount(None)
    for _ in range(5000):
        label.setText("x")
        label.update()
        QtCore.QCoreApplication.processEvents()
    assert sys.getrefcount(None) > before - 100  # the leak lost 15,000 here
