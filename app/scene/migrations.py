"""Upgrades of raw scene data (parsed YAML) from older ``schema_version``s to the current one.

Each step takes the data of version N and returns version N + 1. Steps move the parsed
dicts and lists rather than copying them, so the YAML line numbers recorded for them
(``app.scene.io``) still point into the original file after migration.

Version 1 (the first Deft files) differed from version 2 as follows:
- bodies were under ``objects:``, grippers under ``grippers:`` and tactile sensors in a
  top-level ``sensors:`` list naming their ``gripper``; v2 has one ``entities:`` list
  (``type: body|gripper``) with each gripper's sensors inside it;
- transforms had ``pos`` and ``euler`` (degrees); v2 has ``position`` and ``rotation``
  (quaternion; ``rpy_deg`` is still accepted as input);
- materials said ``E`` and ``nu``; v2 says ``youngs_modulus`` and ``poisson_ratio``;
- ``simulation.steps`` is v2's ``simulation.horizon``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.scene.model import SCHEMA_VERSION


class MigrationError(ValueError):
    """Raw data that cannot be upgraded: (field path, message)."""

    def __init__(self, loc: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.loc = loc


def _rename(d: Any, old: str, new: str, loc: tuple[str | int, ...]) -> None:
    if isinstance(d, dict) and old in d:
        if new in d:
            raise MigrationError(loc + (old,), f"both {old!r} (version 1) and {new!r} given (expected only {old!r})")
        d[new] = d.pop(old)


def _v1_transform(t: Any, loc: tuple[str | int, ...]) -> None:
    _rename(t, "pos", "position", loc + ("transform",))
    _rename(t, "euler", "rpy_deg", loc + ("transform",))


def _v1_material(m: Any, loc: tuple[str | int, ...]) -> None:
    _rename(m, "E", "youngs_modulus", loc + ("material",))
    _rename(m, "nu", "poisson_ratio", loc + ("material",))


def _v1_to_v2(data: dict) -> dict:
    objects = data.pop("objects", None) or []
    grippers = data.pop("grippers", None) or []
    sensors = data.pop("sensors", None) or []
    for name, items in (("objects", objects), ("grippers", grippers), ("sensors", sensors)):
        if not isinstance(items, list):
            raise MigrationError((name,), f"{type(items).__name__} given (expected a list in a version 1 file)")
    for i, body in enumerate(objects):
        if isinstance(body, dict):
            body["type"] = "body"
            _v1_transform(body.get("transform"), ("objects", i))
            _v1_material(body.get("material"), ("objects", i))
    by_name = {}
    for i, g in enumerate(grippers):
        if isinstance(g, dict):
            g["type"] = "gripper"
            _v1_transform(g.get("transform"), ("grippers", i))
            by_name[g.get("name")] = g
    for i, s in enumerate(sensors):
        if not isinstance(s, dict):
            continue
        owner = by_name.get(s.pop("gripper", None))
        if owner is None:
            raise MigrationError(("sensors", i, "gripper"), "names no gripper (expected the name of a gripper)")
        _v1_material(s.get("material"), ("sensors", i))
        owner.setdefault("sensors", []).append(s)
    data["entities"] = objects + grippers
    _rename(data.get("simulation"), "steps", "horizon", ("simulation",))
    return data


# version N -> the step that turns version N data into version N + 1
STEPS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


def migrate(data: dict) -> tuple[dict, int]:
    """``data`` upgraded to the current schema, and the version it was written in."""
    version = data.get("schema_version")
    if version is None:
        raise MigrationError(("schema_version",), f"missing (expected schema_version: {SCHEMA_VERSION})")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MigrationError(("schema_version",), f"{version!r} is not a version (expected 1..{SCHEMA_VERSION})")
    if version > SCHEMA_VERSION:
        raise MigrationError(
            ("schema_version",),
            f"{version} is newer than this Deft reads (expected at most {SCHEMA_VERSION}; update Deft)",
        )
    original = version
    while version < SCHEMA_VERSION:
        data = STEPS[version](data)
        version += 1
        data["schema_version"] = version
    return data, original
