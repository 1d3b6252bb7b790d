"""Per-user files of the studio: recent scenes and crash-recovery autosaves (no Qt).

Both live in the user's config folder (``DEFT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/deft``).
A recovery file is written while a session runs and removed when it ends cleanly; one left
behind by a session whose process is gone means that session crashed, and the next start
offers it back.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


def config_dir() -> Path:
    root = os.environ.get("DEFT_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "deft"
    )
    return Path(root)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RecentFiles:
    """Most recent first, no duplicates, only files that still exist."""

    def __init__(self, path: Path | None = None, limit: int = 10) -> None:
        self.path = path or config_dir() / "recent.json"
        self.limit = limit

    def list(self) -> list[Path]:
        try:
            names = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [Path(n) for n in names if isinstance(n, str) and Path(n).is_file()][: self.limit]

    def add(self, scene: Path) -> None:
        scene = Path(scene).resolve()
        names = [scene] + [p for p in self.list() if p != scene]
        _write_atomic(self.path, json.dumps([str(p) for p in names[: self.limit]], indent=1))


@dataclass(frozen=True)
class Recovery:
    text: Path  # the autosaved scene text
    original: Path | None  # the file the session was editing (None: never saved)
    saved_at: float  # seconds since the epoch


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Autosave:
    """This session's recovery file, and the ones that crashed sessions left behind."""

    def __init__(self, folder: Path | None = None, pid: int | None = None) -> None:
        self.folder = folder or config_dir() / "recovery"
        self.pid = os.getpid() if pid is None else pid

    @property
    def _text(self) -> Path:
        return self.folder / f"session-{self.pid}.yaml"

    @property
    def _meta(self) -> Path:
        return self.folder / f"session-{self.pid}.json"

    def save(self, text: str, original: Path | None) -> Path:
        _write_atomic(self._text, text)
        meta = {"pid": self.pid, "original": str(original) if original else None, "saved_at": time.time()}
        _write_atomic(self._meta, json.dumps(meta))
        return self._text

    def end_session(self) -> None:
        """A clean exit: nothing to recover."""
        for path in (self._text, self._meta):
            path.unlink(missing_ok=True)

    def orphans(self) -> list[Recovery]:
        """Recovery files of sessions whose process is gone, newest first."""
        found = []
        for meta_path in self.folder.glob("session-*.json"):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                pid = int(meta["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            text = meta_path.with_suffix(".yaml")
            if pid == self.pid or _pid_alive(pid) or not text.is_file():
                continue
            original = Path(meta["original"]) if meta.get("original") else None
            found.append(Recovery(text=text, original=original, saved_at=float(meta.get("saved_at", 0))))
        return sorted(found, key=lambda r: -r.saved_at)

    def discard(self, recovery: Recovery) -> None:
        recovery.text.unlink(missing_ok=True)
        recovery.text.with_suffix(".json").unlink(missing_ok=True)
