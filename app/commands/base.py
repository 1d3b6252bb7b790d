"""What an undoable edit is: ``Command`` (do/undo on a Scene) and ``Macro`` (several as one)."""

from __future__ import annotations

from app.scene.model import Scene

Path = tuple[str | int, ...]  # field names, list indices and dict keys from the Scene down


class CommandError(ValueError):
    """An edit that would leave the document invalid; the document is left unchanged."""


class PathError(CommandError):
    """A path that leads nowhere in the document."""


class Command:
    """One undoable edit. ``do`` may raise ``CommandError``, and must then leave the
    document as it found it.

    ``merge_id``: consecutive pushes with the same non-None id may merge into one undo step
    (a drag of a slider or gizmo), when ``merge_with`` agrees."""

    text: str = "edit"
    merge_id: str | None = None

    def do(self, scene: Scene) -> None:
        raise NotImplementedError

    def undo(self, scene: Scene) -> None:
        raise NotImplementedError

    def merge_with(self, later: Command) -> bool:
        """Absorb ``later`` (already done) into this one; False if they do not merge."""
        return False

    def paths(self) -> list[Path]:
        """The document paths this edit changes (for the stack's change events)."""
        return []


class Macro(Command):
    """Commands done as one step: undone in reverse order, redone in order."""

    def __init__(self, text: str, children: list[Command] | None = None):
        self.text = text
        self.children: list[Command] = list(children or [])

    def do(self, scene: Scene) -> None:
        for i, child in enumerate(self.children):
            try:
                child.do(scene)
            except Exception:
                for done in reversed(self.children[:i]):
                    done.undo(scene)
                raise

    def undo(self, scene: Scene) -> None:
        for child in reversed(self.children):
            child.undo(scene)

    def paths(self) -> list[Path]:
        return [p for child in self.children for p in child.paths()]
