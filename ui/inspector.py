"""Inspector: a form over every field of the selected document node, built from its model.

Each leaf field is one row: name, editor, unit and range, and a reason label. An edit is
handed to ``apply(path, value)``; when that refuses the value (pydantic or the undo stack
raises), the reason appears next to the field and nothing changes. Numbers, tuples and lists
are typed as text (``0.1, 0.2, 0.3``) and parsed as YAML, so the model's own validation
decides what is valid.
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Literal, Union

import annotated_types as at
import yaml
from pydantic import BaseModel, ValidationError
from PySide6 import QtCore, QtWidgets

from app.scene.model import field_unit

Path = tuple  # keys from the scene root, e.g. ("entities", 1, "material", "youngs_modulus")


def describe_error(exc: Exception) -> str:
    """One line a user can act on: what was wrong with the value."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {msg}" if where else msg)
        return "; ".join(parts)
    return str(exc)


def _bounds(metadata) -> str:
    lo = hi = None
    for item in metadata:
        if isinstance(item, at.Gt):
            lo = f"({item.gt:g}"
        elif isinstance(item, at.Ge):
            lo = f"[{item.ge:g}"
        elif isinstance(item, at.Lt):
            hi = f"{item.lt:g})"
        elif isinstance(item, at.Le):
            hi = f"{item.le:g}]"
    if lo is None and hi is None:
        return ""
    return f"{lo or '(-inf'}, {hi or 'inf)'}"


def field_range(info) -> str:
    """The allowed range of a field as text, e.g. ``(0, 1e+12]``; '' when unbounded."""
    own = _bounds(info.metadata)
    if own:
        return own
    args = typing.get_args(info.annotation)
    elements = [_bounds(getattr(typing.get_args(a)[1], "metadata", [])) for a in args if typing.get_origin(a) is typing.Annotated]
    elements = [e for e in elements if e]
    return f"each {elements[0]}" if elements and len(set(elements)) == 1 else ""


def _format(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(_format(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return "" if value is None else str(value)


def parse_text(text: str, current: Any) -> Any:
    """Typed text to a value of the field's shape (the model validates it afterwards)."""
    text = text.strip()
    if isinstance(current, str) or (current is None and not any(c in text for c in ",[{")):
        return text if text or isinstance(current, str) else None
    if isinstance(current, (tuple, list)) and not text.startswith("["):
        text = f"[{text}]"
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot read {text!r} ({exc.problem})") from None


def _literal_choices(annotation) -> list | None:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return None


def _model_union(annotation) -> list[type[BaseModel]] | None:
    """The model classes of a discriminated union field (shape, material), else None."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if members and all(isinstance(a, type) and issubclass(a, BaseModel) for a in members):
            return members
    return None


def _list_of_models(annotation) -> bool:
    if typing.get_origin(annotation) is not list:
        return False
    (item,) = typing.get_args(annotation)
    return isinstance(item, type) and issubclass(item, BaseModel)


class FieldRow(QtWidgets.QWidget):
    """One leaf field: editor + unit/range + the reason a value was refused."""

    def __init__(self, editor: QtWidgets.QWidget, unit: str, rng: str, parent=None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.error = QtWidgets.QLabel()
        self.error.setStyleSheet("color: #ff6b6b;")
        self.error.setWordWrap(True)
        self.error.hide()
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(editor, 0, 0)
        hint = " ".join(x for x in (unit, rng) if x)
        if hint:
            label = QtWidgets.QLabel(hint)
            label.setStyleSheet("color: #9aa3ad;")
            layout.addWidget(label, 0, 1)
        layout.addWidget(self.error, 1, 0, 1, 2)

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))


class Inspector(QtWidgets.QScrollArea):
    """Form over one node of the document; rebuilds when told the node changed."""

    def __init__(self, apply: Callable[[Path, Any], None], parent=None) -> None:
        super().__init__(parent)
        self._apply = apply
        self.setWidgetResizable(True)
        self._rows: dict[Path, FieldRow] = {}
        self._path: Path = ()
        self._node: BaseModel | None = None
        self._title = ""
        self.show_node(None, (), "")

    @property
    def rows(self) -> dict[Path, FieldRow]:
        return self._rows

    def show_node(self, node: BaseModel | None, path: Path, title: str) -> None:
        """Show ``node``; the form is rebuilt once control returns to the event loop, since
        an edit that changed the document may still be running inside one of its editors."""
        self._node, self._path, self._title = node, path, title
        if not self._rebuild_pending:
            self._rebuild_pending = True
            QtCore.QTimer.singleShot(0, self._rebuild)

    _rebuild_pending = False

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        node, path, title = self._node, self._path, self._title
        self._rows = {}
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        if node is None:
            hint = QtWidgets.QLabel("Nothing selected: click an object in the viewport or the outliner.")
            hint.setWordWrap(True)
            form.addRow(hint)
        else:
            heading = QtWidgets.QLabel(f"<b>{title}</b>  <span style='color:#9aa3ad'>(SI units)</span>")
            form.addRow(heading)
            self._add_fields(form, node, path)
        self.setWidget(body)

    def refresh(self, node: BaseModel | None) -> None:
        """Show the new value of the same node (after an edit, undo or redo)."""
        self.show_node(node, self._path, self._title)

    def _add_fields(self, form: QtWidgets.QFormLayout, node: BaseModel, path: Path) -> None:
        for name, info in type(node).model_fields.items():
            value = getattr(node, name)
            here = path + (name,)
            union = _model_union(info.annotation)
            if isinstance(value, BaseModel):
                box = QtWidgets.QGroupBox(name)
                inner = QtWidgets.QFormLayout(box)
                if union:
                    self._add_kind_switch(inner, value, union, here)
                self._add_fields(inner, value, here)
                form.addRow(box)
            elif _list_of_models(info.annotation):
                if not value:
                    form.addRow(QtWidgets.QLabel(name), QtWidgets.QLabel("none"))
                for i, item in enumerate(value):
                    box = QtWidgets.QGroupBox(f"{name}[{i}]" + (f" {item.name}" if hasattr(item, "name") else ""))
                    inner = QtWidgets.QFormLayout(box)
                    self._add_fields(inner, item, here + (i,))
                    form.addRow(box)
            elif name in ("kind", "type") and _literal_choices(info.annotation) and len(_literal_choices(info.annotation)) == 1:
                continue  # a discriminator: switched with the kind combo of the parent group
            else:
                row = self._leaf_row(type(node), name, info, value, here)
                self._rows[here] = row
                label = QtWidgets.QLabel(name)
                label.setToolTip(info.description or "")
                form.addRow(label, row)

    def _leaf_row(self, model, name, info, value, path: Path) -> FieldRow:
        choices = _literal_choices(info.annotation)
        if isinstance(value, bool):
            editor = QtWidgets.QCheckBox()
            editor.setChecked(value)
            editor.toggled.connect(lambda on, p=path: self._submit(p, on))
        elif choices:
            editor = QtWidgets.QComboBox()
            editor.addItems([str(c) for c in choices])
            editor.setCurrentText(str(value))
            editor.currentTextChanged.connect(lambda text, p=path, c=choices: self._submit(p, c[[str(x) for x in c].index(text)]))
        else:
            editor = QtWidgets.QLineEdit(_format(value))
            editor.editingFinished.connect(lambda e=editor, p=path, v=value: self._submit_text(p, e, v))
        editor.setToolTip(info.description or "")
        editor.setObjectName(".".join(str(p) for p in path))
        return FieldRow(editor, field_unit(model, name) or "", field_range(info))

    def _add_kind_switch(self, form, value: BaseModel, union, path: Path) -> None:
        kinds = [cls.model_fields["kind"].default for cls in union]
        combo = QtWidgets.QComboBox()
        combo.addItems(kinds)
        combo.setCurrentText(value.kind)
        row = FieldRow(combo, "", "")
        self._rows[path + ("kind",)] = row

        def switch(kind: str) -> None:
            cls = union[kinds.index(kind)]
            try:
                replacement = cls.model_validate(_shared_fields(value, cls))
            except ValidationError as exc:
                row.show_error(f"{kind} needs more settings: {describe_error(exc)}")
                return
            self._submit(path, replacement)

        combo.currentTextChanged.connect(switch)
        form.addRow(QtWidgets.QLabel("kind"), row)

    def _submit_text(self, path: Path, editor: QtWidgets.QLineEdit, current: Any) -> None:
        if editor.text().strip() == _format(current):
            return
        try:
            value = parse_text(editor.text(), current)
        except ValueError as exc:
            self._rows[path].show_error(str(exc))
            return
        self._submit(path, value)

    def _submit(self, path: Path, value: Any) -> None:
        row = self._rows.get(path)
        try:
            self._apply(path, value)
        except (ValueError, TypeError, KeyError) as exc:
            if row is not None:
                row.show_error(f"not applied: {describe_error(exc)}")
            return
        if row is not None:
            row.show_error("")


def _shared_fields(value: BaseModel, cls: type[BaseModel]) -> dict:
    """Settings of ``value`` that the other kind ``cls`` also has (friction survives a switch)."""
    data = value.model_dump()
    return {k: v for k, v in data.items() if k in cls.model_fields and k != "kind"}
