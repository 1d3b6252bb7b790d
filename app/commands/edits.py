"""The edits of a scene: set a field, insert/remove list items, and the usual entity and
keyframe operations built from them (``add_entity``, ``remove_entity``, ``duplicate_entity``,
``rename_entity`` (entities and sensors), ``add_keyframe``, ``remove_keyframe``, ``set_keyframe``).

Every edit is validated, re-checks the scene's cross-references (unique names, the
trajectory's tool, tactile topics, loss terms), and is refused with ``CommandError``
(leaving the document unchanged) if it is invalid or breaks one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from app.commands.addressing import dotted, get_at, set_at
from app.commands.base import Command, CommandError, Macro, Path
from app.scene.model import Body, Gripper, Keyframe, Scene


def _checked_set(scene: Scene, path: Path, value: Any, old: Any, check: bool = True) -> None:
    try:
        set_at(scene, path, value)
    except ValidationError as exc:
        # error locations start at the assigned field of the owning model, already in path
        raise CommandError("; ".join(
            ": ".join([dotted(path)] + ([dotted(e["loc"][1:])] if len(e["loc"]) > 1 else [])
                      + [e["msg"].removeprefix("Value error, ")])
            for e in exc.errors()
        )) from None
    problems = scene.reference_problems() if check else []
    if problems:
        set_at(scene, path, old)
        raise CommandError("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))


class SetField(Command):
    """Set the value at ``path`` (a field, list item, tuple element or dict entry).

    ``check=False`` skips the cross-reference check, for a step inside a Macro whose last
    step checks (see ``rename_entity``)."""

    def __init__(
        self, path: Path, value: Any, merge_id: str | None = None, text: str | None = None, check: bool = True
    ):
        self.path = tuple(path)
        self.check = check
        self.value = value
        self.merge_id = merge_id
        self.text = text or f"set {dotted(self.path)}"
        self.old: Any = None

    def do(self, scene: Scene) -> None:
        self.old = get_at(scene, self.path)
        _checked_set(scene, self.path, self.value, self.old, self.check)
        self.value = get_at(scene, self.path)  # as validated (a dict becomes its model)

    def undo(self, scene: Scene) -> None:
        set_at(scene, self.path, self.old)

    def merge_with(self, later: Command) -> bool:
        if not (isinstance(later, SetField) and later.path == self.path):
            return False
        self.value = later.value
        return True

    def paths(self) -> list[Path]:
        return [self.path]


class InsertItem(Command):
    """Insert ``value`` into the list at ``path`` before ``index`` (None: at the end)."""

    def __init__(self, path: Path, value: Any, index: int | None = None, text: str | None = None):
        self.path, self.value, self.index = tuple(path), value, index
        self.text = text or f"add to {dotted(self.path)}"

    def do(self, scene: Scene) -> None:
        items = list(get_at(scene, self.path))
        self.index = len(items) if self.index is None else self.index
        if not 0 <= self.index <= len(items):
            raise CommandError(f"{dotted(self.path)}: index {self.index} out of range 0..{len(items)}")
        _checked_set(scene, self.path, items[: self.index] + [self.value] + items[self.index:], items)
        self.value = get_at(scene, self.path)[self.index]

    def undo(self, scene: Scene) -> None:
        items = list(get_at(scene, self.path))
        set_at(scene, self.path, items[: self.index] + items[self.index + 1:])

    def paths(self) -> list[Path]:
        return [self.path]


class RemoveItem(Command):
    """Remove item ``index`` of the list at ``path``."""

    def __init__(self, path: Path, index: int, text: str | None = None):
        self.path, self.index = tuple(path), index
        self.text = text or f"remove from {dotted(self.path)}"
        self.removed: Any = None

    def do(self, scene: Scene) -> None:
        items = list(get_at(scene, self.path))
        if not 0 <= self.index < len(items):
            raise CommandError(f"{dotted(self.path)}: no item {self.index} (has {len(items)})")
        self.removed = items[self.index]
        _checked_set(scene, self.path, items[: self.index] + items[self.index + 1:], items)

    def undo(self, scene: Scene) -> None:
        items = list(get_at(scene, self.path))
        set_at(scene, self.path, items[: self.index] + [self.removed] + items[self.index:])

    def paths(self) -> list[Path]:
        return [self.path]


# ---------------------------------------------------------------- entity and keyframe edits


def entity_index(scene: Scene, name: str) -> int:
    for i, e in enumerate(scene.entities):
        if e.name == name:
            return i
    raise CommandError(f"no entity named {name!r}")


def unique_name(scene: Scene, base: str) -> str:
    taken = set(scene.all_names())
    if base not in taken:
        return base
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def add_entity(entity: Body | Gripper | dict, index: int | None = None) -> InsertItem:
    name = entity["name"] if isinstance(entity, dict) else entity.name
    return InsertItem(("entities",), entity, index, text=f"add {name}")


def remove_entity(scene: Scene, name: str) -> RemoveItem:
    return RemoveItem(("entities",), entity_index(scene, name), text=f"remove {name}")


def duplicate_entity(scene: Scene, name: str, new_name: str | None = None) -> InsertItem:
    """A copy of entity ``name`` right after it, under a fresh name (sensors renamed too)."""
    i = entity_index(scene, name)
    data = scene.entities[i].model_dump()
    data["name"] = new_name or unique_name(scene, f"{name}_copy")
    for sensor in data.get("sensors", []):
        sensor["name"] = unique_name(scene, f"{sensor['name']}_copy")
    return InsertItem(("entities",), data, i + 1, text=f"duplicate {name}")


def name_path(scene: Scene, name: str) -> Path:
    """The path of the ``name`` field of the entity or tactile sensor called ``name``."""
    for i, e in enumerate(scene.entities):
        if e.name == name:
            return ("entities", i, "name")
        for j, sensor in enumerate(getattr(e, "sensors", [])):
            if sensor.name == name:
                return ("entities", i, "sensors", j, "name")
    raise CommandError(f"no entity or sensor named {name!r}")


def rename_entity(scene: Scene, old: str, new: str) -> Macro:
    """Rename an entity or tactile sensor and every reference to it (trajectory tool, loss
    terms, lab tactile topics), as one step."""
    steps = [SetField(name_path(scene, old), new, check=False)]
    if scene.trajectory is not None and scene.trajectory.tool == old:
        steps.append(SetField(("trajectory", "tool"), new, check=False))
    for j, term in enumerate(scene.task.loss):
        if term.entity == old:
            steps.append(SetField(("task", "loss", j, "entity"), new, check=False))
    topics = scene.lab.tactile_topics
    if old in topics:
        renamed = {(new if k == old else k): v for k, v in topics.items()}
        steps.append(SetField(("lab", "tactile_topics"), renamed, check=False))
    steps[-1].check = True  # references dangle until the last step; check the end state
    return Macro(f"rename {old} to {new}", steps)


def add_keyframe(scene: Scene, keyframe: Keyframe | dict) -> InsertItem:
    """Insert a keyframe at the place its time belongs."""
    if scene.trajectory is None:
        raise CommandError("the scene has no trajectory (expected one before adding keyframes)")
    kf = keyframe if isinstance(keyframe, BaseModel) else Keyframe.model_validate(keyframe)
    index = sum(1 for k in scene.trajectory.keyframes if k.time < kf.time)
    return InsertItem(("trajectory", "keyframes"), kf, index, text=f"add keyframe at {kf.time:g} s")


def remove_keyframe(index: int) -> RemoveItem:
    return RemoveItem(("trajectory", "keyframes"), index, text=f"remove keyframe {index}")


def set_keyframe(index: int, keyframe: Keyframe | dict, merge_id: str | None = None) -> SetField:
    return SetField(("trajectory", "keyframes", index), keyframe, merge_id, text=f"edit keyframe {index}")
