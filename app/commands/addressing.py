"""Field paths into the document: ``("entities", 2, "material", "youngs_modulus")``.

A path is a tuple of model field names, list indices and dict keys. ``set_at`` replaces
the value by assigning the field of the model that owns it (building new lists, tuples or
dicts on the way), so pydantic validates the edit and psygnal emits the field's event.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Path = tuple[str | int, ...]


def get_at(root: BaseModel, path: Path) -> Any:
    node: Any = root
    for key in path:
        node = getattr(node, key) if isinstance(node, BaseModel) else node[key]
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
        raise ValueError("empty path (expected at least one field name)")
    # find the last model on the path: the assignment happens on its field
    owner_depth = max(i for i in range(len(path)) if isinstance(get_at(root, path[:i]), BaseModel))
    owner = get_at(root, path[:owner_depth])
    field = path[owner_depth]
    if not isinstance(field, str) or field not in type(owner).model_fields:
        raise KeyError(f"{type(owner).__name__} has no field {field!r}")
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
