"""Scene files: safe YAML in, every problem out with its line, atomic saves.

API:
- ``load_scene(path) -> Scene``: read, migrate, validate and check asset paths; raises
  ``SceneError`` whose ``problems`` list every ``Problem`` (file, line, field path, message),
  each formatted ``FILE:LINE: field.path: what is wrong (what was expected)``.
- ``scene_from_text(text, source="<text>", scene_path=None) -> Scene``: the same on text;
  asset paths are checked against ``scene_path``'s folder and assets/ (assets/ only if None).
- ``scene_to_text(scene) -> str`` and ``save_scene(scene, path)``: write atomically (temp
  file in the same folder, flush, fsync, rename over), keeping the previous file as
  ``<name>.bak``.

Only ``yaml.SafeLoader`` composition is used: a file cannot run code, and anchors/aliases
are refused (they are never needed in a scene and are the way to blow up a parser).
"""

from __future__ import annotations

import difflib
import os
import secrets
import stat
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from app.scene.migrations import MigrationError, migrate
from app.scene.model import ASSET_SHAPES, Scene, deferred_reference_checks
from app.scene.paths import AssetPathError, resolve_asset

MAX_SCENE_BYTES = 4 * 1024 * 1024

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    path: str  # dotted field path, "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class SceneError(ValueError):
    """A scene that cannot be loaded; ``problems`` holds every reason found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


# ---------------------------------------------------------------- YAML with line numbers


class _Lines:
    """1-based line of each parsed container and of each of its keys/items, by container id."""

    def __init__(self) -> None:
        self.table: dict[int, tuple[int, dict[Any, int]]] = {}
        self.keep: list[Any] = []  # keeps the containers alive so their ids stay unique

    def add(self, container: Any, line: int, children: dict[Any, int]) -> None:
        self.table[id(container)] = (line, children)
        self.keep.append(container)

    def line_of(self, root: Any, loc: Loc) -> int:
        """The line of the deepest part of ``loc`` the parsed data still has."""
        node, line = root, self.table.get(id(root), (1, {}))[0]
        for key in loc:
            entry = self.table.get(id(node))
            if entry is not None:
                line = entry[1].get(key, entry[0])
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                continue  # a union tag in pydantic's path, or a key this file lacks
        return line


def _parse(text: str) -> tuple[Any, _Lines]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = _Lines()
        if node is None:
            return None, lines
        data = loader.construct_document(node)
        _record(node, data, lines, loader, set())
        return data, lines
    finally:
        loader.dispose()


def _record(node: yaml.Node, data: Any, lines: _Lines, loader: yaml.SafeLoader, seen: set[int]) -> None:
    if id(node) in seen:
        raise SceneError([_yaml_problem(node, "YAML aliases (*name) are not allowed (expected plain values)")])
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        children: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise SceneError([_yaml_problem(key_node, f"key {key!r} is not text (expected a field name)")])
            if key in children:
                raise SceneError([_yaml_problem(key_node, f"duplicate key {key!r} (expected each key once)")])
            children[key] = key_node.start_mark.line + 1
            _record(value_node, data[key], lines, loader, seen)
        lines.add(data, node.start_mark.line + 1, children)
    elif isinstance(node, yaml.SequenceNode):
        for item_node, item in zip(node.value, data):
            _record(item_node, item, lines, loader, seen)
        lines.add(data, node.start_mark.line + 1, {i: n.start_mark.line + 1 for i, n in enumerate(node.value)})


def _yaml_problem(node: yaml.Node, message: str) -> Problem:
    return Problem("", node.start_mark.line + 1, "", message)


# ---------------------------------------------------------------- pydantic errors as problems


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose field ``loc[-1]`` is, following ``loc`` through Scene's types."""
    tp: Any = Scene
    for key in loc[:-1]:
        tp = _step(tp, key)
        if tp is None:
            return None
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _step(tp: Any, key: Any) -> Any:
    while True:  # unwrap Annotated / Optional
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in options]
            if len(models) == 1:
                tp = models[0]
                continue
            for m in models:  # a tagged union: the key is the tag
                if isinstance(m, type) and issubclass(m, BaseModel):
                    tag = {m.model_fields[f].default for f in ("kind", "type") if f in m.model_fields}
                    if key in tag:
                        return m
            return None
        else:
            break
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(key)
        return field.annotation if field else None
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (list, tuple) and args:
        return args[0] if isinstance(key, int) else None
    if typing.get_origin(tp) is dict and len(args) == 2:
        return args[1]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict) -> str:
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        model = _model_at(err["loc"])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field (expected one of: {', '.join(allowed)}{hint})"
    if kind == "missing":
        if isinstance(err["loc"][-1], int):
            return f"item {err['loc'][-1]} missing (expected a value at this position)"
        return "missing (expected a value for this required field)"
    if kind == "entity_type":
        return f"{_short(value.get('type'))} is not an entity type (expected 'body' or 'gripper')"
    if kind == "union_tag_invalid":
        ctx = err["ctx"]
        return f"unknown {ctx['discriminator']} {ctx['tag']!r} (expected one of {ctx['expected_tags']})"
    if kind == "union_tag_not_found":
        return f"no {err['ctx']['discriminator']} given (expected one of the kinds in `deft schema`)"
    if kind == "finite_number":
        return f"{_short(value)} is not finite (expected a finite number)"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        return text if "(expected" in text else f"{text} (got {_short(value)}; expected what `deft schema` allows)"
    if kind in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        bound = f"at least {ctx['min_length']}" if kind == "too_short" else f"at most {ctx['max_length']}"
        what = "characters" if isinstance(value, str) else "items"
        return f"{_short(value)} has {ctx.get('actual_length', '?')} {what} (expected {bound})"
    if msg.startswith("Input should be "):
        return f"{_short(value)} is invalid (expected {msg.removeprefix('Input should be ')})"
    return f"{msg} (got {_short(value)}; expected what `deft schema` allows)"


def _is_tag(node: Any, key: Any) -> bool:
    """Whether ``key`` in pydantic's error path names the union member ``node`` was read as."""
    if not isinstance(node, dict):
        return isinstance(key, str) and not isinstance(node, list)  # a scalar has no fields
    return key not in node and key in (node.get("kind"), node.get("type", "body"))


def _path(data: Any, loc: Loc) -> str:
    """Dotted field path of ``loc`` without pydantic's union tags."""
    parts, node = [], data
    for key in loc:
        if _is_tag(node, key):
            continue
        parts.append(str(key))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)


# ---------------------------------------------------------------- loading


def _asset_fields(scene: Scene) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for i, e in enumerate(scene.entities):
        shape = getattr(e, "shape", None)
        if isinstance(shape, ASSET_SHAPES):
            out.append((("entities", i, "shape", "path"), shape.path))
    if scene.lab.arm_urdf is not None:
        out.append((("lab", "arm_urdf"), scene.lab.arm_urdf))
    return out


def asset_problems(scene: Scene, scene_path: str | Path | None) -> list[tuple[Loc, str]]:
    """(field path, message) for every asset path of ``scene`` that does not resolve."""
    problems = []
    for loc, rel in _asset_fields(scene):
        try:
            resolve_asset(scene_path, rel)
        except AssetPathError as exc:
            problems.append((loc, str(exc)))
    return problems


def scene_from_text(text: str, source: str = "<text>", scene_path: str | Path | None = None) -> Scene:
    """Parse, migrate and validate scene text; raise ``SceneError`` listing every problem."""

    def fail(items: list[tuple[int, str, str]]) -> SceneError:
        return SceneError([Problem(source, line, path, message) for line, path, message in items])

    if "\x00" in text:
        raise fail([(1, "", "binary data, not a YAML text file (expected a scene in YAML)")])
    if not text.strip():
        raise fail([(1, "", "file is empty (expected a YAML mapping with schema_version and the scene)")])
    try:
        return _scene_from_text(text, source, scene_path, fail)
    except RecursionError:
        raise fail([(1, "", "nested too deeply (expected a scene of ordinary depth)")]) from None


def _scene_from_text(
    text: str, source: str, scene_path: str | Path | None, fail: Callable[[list[tuple[int, str, str]]], SceneError]
) -> Scene:
    try:
        data, lines = _parse(text)
    except SceneError as exc:
        raise SceneError([Problem(source, p.line, p.path, p.message) for p in exc.problems]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise fail([(line, "", f"unsupported YAML: {what} (expected plain values, no tags)")]) from None
        raise fail([(line, "", f"YAML syntax error: {what} (expected valid YAML)")]) from None
    if data is None:
        raise fail([(1, "", "file holds only comments (expected a YAML mapping with schema_version and the scene)")])
    if not isinstance(data, dict):
        raise fail([(1, "", f"top level is a {type(data).__name__} (expected a mapping of scene fields)")])
    before = dict(data)  # migration pops top-level keys; this copy keeps their lines reachable
    lines.add(before, *lines.table[id(data)])
    try:
        data, _ = migrate(data)
    except MigrationError as exc:
        raise fail([(lines.line_of(before, exc.loc), ".".join(map(str, exc.loc)), str(exc))]) from None
    try:
        with deferred_reference_checks():
            scene = Scene.model_validate(data)
    except ValidationError as exc:
        raise fail(
            [(lines.line_of(data, e["loc"]), _path(data, e["loc"]), _message(e)) for e in exc.errors()]
        ) from None
    found = scene.reference_problems() + asset_problems(scene, scene_path)
    if found:
        raise fail([(lines.line_of(data, loc), ".".join(map(str, loc)), msg) for loc, msg in found])
    return scene


def read_scene_text(path: str | Path) -> str:
    """The text of a scene file, refusing missing, huge, binary or non-UTF-8 files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise SceneError([Problem(str(path), 1, "", "not a file (expected a scene .yaml file)")])
        if size > MAX_SCENE_BYTES:
            raise SceneError([Problem(
                str(path), 1, "", f"file is {size} bytes (expected at most {MAX_SCENE_BYTES} bytes for a scene)"
            )])
        raw = path.read_bytes()
    except OSError as exc:
        raise SceneError([Problem(str(path), 1, "", f"cannot read: {exc.strerror or exc} (expected a readable file)")])
    if b"\x00" in raw:
        raise SceneError([Problem(str(path), 1, "", "binary data (NUL bytes), not a YAML text file (expected a scene in YAML)")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SceneError([Problem(
            str(path), line, "", f"binary data at byte {exc.start}, not UTF-8 text (expected a scene in YAML)"
        )]) from None


def load_scene(path: str | Path) -> Scene:
    """The scene in ``path``; ``SceneError`` lists every problem with its line."""
    return scene_from_text(read_scene_text(path), source=str(path), scene_path=path)


# ---------------------------------------------------------------- saving


class _Dumper(yaml.SafeDumper):
    """Block style, but short lists of numbers on one line: ``position: [0.0, 0.0, 0.1]``."""


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flat = all(isinstance(v, (int, float, str, bool)) for v in value) and len(value) <= 8
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(list, _represent_list)

_FIRST = ("schema_version", "type", "kind", "name")


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        keys = [k for k in _FIRST if k in value] + [k for k in value if k not in _FIRST]
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def scene_to_text(scene: Scene) -> str:
    """The YAML text of ``scene`` (every field written, discriminators first)."""
    return yaml.dump(_ordered(scene.model_dump(mode="json")), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def save_scene(scene: Scene, path: str | Path) -> None:
    """Write ``scene`` to ``path`` atomically; the file it replaces becomes ``<name>.bak``.

    At every instant ``path`` holds either the complete old or the complete new scene.
    A replaced file keeps its permissions; a new one gets the usual umask ones."""
    path = Path(path)
    folder = path.absolute().parent
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    tmp = _synced_temp(folder, path.name, scene_to_text(scene).encode("utf-8"), mode)
    try:
        if path.exists():
            bak = path.with_name(path.name + ".bak")
            old = _synced_temp(folder, bak.name, path.read_bytes(), mode)
            try:
                os.replace(old, bak)
            except BaseException:
                old.unlink(missing_ok=True)
                raise
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


def _synced_temp(folder: Path, name: str, data: bytes, mode: int | None) -> Path:
    """A hidden temporary file in ``folder`` holding ``data``, flushed to disk."""
    tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
