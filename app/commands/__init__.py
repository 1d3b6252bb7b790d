"""Undoable edits of a scene document (Qt-free).

``UndoStack`` (app.commands.stack) records ``Command``s; ``SetField``, ``InsertItem`` and
``RemoveItem`` (app.commands.edits) are the generic edits, addressed by field paths
(app.commands.addressing); the helpers build the usual ones:

    from app.commands import UndoStack, SetField, add_entity, duplicate_entity
    stack = UndoStack(scene)
    stack.push(SetField(("entities", 0, "transform", "position"), (0, 0, 0.2), merge_id="drag"))
    stack.push(duplicate_entity(scene, "cloth"))
    stack.undo()
"""

from app.commands.addressing import get_at, set_at
from app.commands.base import Command, CommandError, Macro, PathError
from app.commands.edits import (
    InsertItem,
    RemoveItem,
    SetField,
    add_entity,
    add_keyframe,
    duplicate_entity,
    entity_index,
    name_path,
    remove_entity,
    remove_keyframe,
    rename_entity,
    set_keyframe,
    unique_name,
)
from app.commands.stack import UndoStack

__all__ = [
    "Command", "CommandError", "InsertItem", "Macro", "PathError", "RemoveItem", "SetField", "UndoStack", "add_entity",
    "add_keyframe", "duplicate_entity", "entity_index", "get_at", "name_path", "remove_entity", "remove_keyframe",
    "rename_entity", "set_at", "set_keyframe", "unique_name",
]
