"""Where scene assets may live, and how a scene's relative asset path becomes a file.

An asset path in a scene is relative, and is looked up first in the scene file's folder,
then in the built-in ``assets/`` folder. Absolute paths and paths that leave both roots
(``../../etc/passwd``, or a symlink pointing outside) are rejected, so a scene from
elsewhere cannot make Deft read arbitrary files.

API: ``assets_root()``, ``default_scene_path()``, ``resolve_asset(scene_path, rel)``
(raises ``AssetPathError``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

_REPO = Path(__file__).resolve().parents[2]


class AssetPathError(ValueError):
    """An asset path that is absolute, escapes the allowed roots, or names no file."""


def assets_root() -> Path:
    """The built-in assets folder (meshes, URDFs, scenes)."""
    return _REPO / "assets"


def default_scene_path() -> Path:
    """The scene the studio opens when given none."""
    return assets_root() / "scenes" / "default.yaml"


def _inside(path: Path, root: Path) -> bool:
    return path.is_relative_to(root.resolve())


def resolve_asset(scene_path: str | Path | None, rel: str) -> Path:
    """The existing file ``rel`` names, looked up next to ``scene_path`` then in assets/.

    ``scene_path`` is the scene file (or None for a scene not on disk: assets/ only)."""
    if not rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or "\\" in rel:
        raise AssetPathError(f"{rel!r} is not a relative path (expected a path relative to the scene or assets/)")
    roots = [assets_root()]
    if scene_path is not None:
        roots.insert(0, Path(scene_path).resolve().parent)
    escaped = False
    for root in roots:
        candidate = (root / rel).resolve()  # follows symlinks, so links out are caught too
        if not any(_inside(candidate, r) for r in roots):
            escaped = True
        elif candidate.is_file():
            return candidate
    where = " or ".join(str(r) for r in roots)
    if escaped:
        raise AssetPathError(f"{rel!r} escapes the allowed folders (expected a path inside {where})")
    raise AssetPathError(f"{rel!r} does not exist (expected a file in {where})")
