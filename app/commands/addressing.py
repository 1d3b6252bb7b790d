"""Field paths into the document: ``("entities", 2, "material", "youngs_modulus")``.

A path is a tuple of model field names, list indices and dict keys. ``set_at`` replaces
the value by assigning the field of the model that owns it (building new lists, tuples or
dicts on the way), so pydantic validates the edit and psygnal emits the field's event.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.commands.base import Path, PathError


def get_at(root: BaseModel, path: Path) -> Any:
    node: Any = root
    for depth, key in enumerate(path):
        try:
            if isinstance(node, BaseModel):
                if not isinstance(key, str) or key not in type(node).model_fields:
                    raise KeyError(key)
                node = getattr(node, key)
            else:
                node = node[key]
        except (KeyError, IndexError, TypeError):
            raise PathError(f"{dotted(path[: depth + 1])}: no such field or item") from None
    return node


def _replaced(container: Any, key: Any, value: Any) -> Any:
    if isinstance(container, dict):
        return {**container, key: value}
    items = list(container)
    items[key] = value
    return type(container)(items) if isinstance(container, tuple) else items


def set_at(root: BaseModel, path: Path, value: Any) -> None:
    """Set the value at ``path``; raises pydantic's ValidationError and changes nothing if refused."""
    if not path:
        raise PathError("empty path (expected at least one field name)")
    get_at(root, path)  # the path must exist
    # find the last model on the path: the assignment happens on its field
    owner_depth = max(i for i in range(len(path)) if isinstance(get_at(root, path[:i]), BaseModel))
    owner = get_at(root, path[:owner_depth])
    field = path[owner_depth]
    inner = path[owner_depth + 1:]
    if inner:
        chain = [getattr(owner, field)]
        for key in inner[:-1]:
            chain.append(chain[-1][key])
        for container, key in zip(reversed(chain), reversed(inner)):
            value = _replaced(container, key, value)
    setattr(owner, field, value)


def dotted(path: Path) -> str:
    return ".".join(map(str, path))
