"""The undo stack of one scene document.

    stack = UndoStack(scene)
    stack.push(SetField(("simulation", "dt"), 2e-3))     # does it; refused edits raise
    stack.undo(); stack.redo()
    stack.can_undo, stack.can_redo, stack.undo_text, stack.redo_text
    stack.is_clean; stack.set_clean()                     # call set_clean() after saving
    stack.begin_macro("move two"); ...pushes...; stack.end_macro()   # one undo step

Pushes with the same ``merge_id`` in a row merge into one step (a drag), never across the
save point or a macro boundary. Events (psygnal): ``document_changed(paths)`` after every
do/undo/redo with the changed paths; ``state_changed()`` whenever can_undo/can_redo/
is_clean/the texts may have changed; ``clean_changed(bool)`` when is_clean flips.
"""

from __future__ import annotations

from psygnal import Signal

from app.commands.base import Command, CommandError, Macro
from app.scene.model import Scene


class UndoStack:
    document_changed = Signal(list)
    state_changed = Signal()
    clean_changed = Signal(bool)

    def __init__(self, scene: Scene):
        self.scene = scene
        self._commands: list[Command] = []
        self._index = 0  # commands[:index] are done
        self._clean: int | None = 0  # index of the saved state; None once unreachable
        self._macros: list[Macro] = []
        self._merge_open = True  # whether the top command may absorb the next push

    # ------------------------------------------------------------ state

    @property
    def can_undo(self) -> bool:
        return self._index > 0 and not self._macros

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._commands) and not self._macros

    @property
    def undo_text(self) -> str:
        return self._commands[self._index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._commands[self._index].text if self.can_redo else ""

    @property
    def is_clean(self) -> bool:
        return self._clean == self._index and not self._macros

    @property
    def index(self) -> int:
        return self._index

    def __len__(self) -> int:
        return len(self._commands)

    def texts(self) -> list[str]:
        """The text of every recorded step, oldest first (the first ``index`` are done)."""
        return [c.text for c in self._commands]

    def set_clean(self) -> None:
        """Mark the current state as the saved one."""
        was = self.is_clean
        self._clean = self._index
        self._merge_open = False
        self._announce(was)

    # ------------------------------------------------------------ editing

    def push(self, command: Command) -> None:
        """Do ``command`` and record it; if it raises, nothing is recorded or changed."""
        was = self.is_clean
        command.do(self.scene)
        if self._macros:
            self._macros[-1].children.append(command)
            self.document_changed.emit(command.paths())
            return
        del self._commands[self._index:]
        if self._clean is not None and self._clean > self._index:
            self._clean = None  # the saved state was in the discarded redo branch
        top = self._commands[-1] if self._commands else None
        if (
            top is not None
            and self._merge_open
            and command.merge_id is not None
            and top.merge_id == command.merge_id
            and top.merge_with(command)
        ):
            pass  # the top step now ends where command ends
        else:
            self._commands.append(command)
            self._index += 1
        self._merge_open = True
        self.document_changed.emit(command.paths())
        self._announce(was)

    def undo(self) -> None:
        if not self.can_undo:
            raise CommandError("nothing to undo")
        was = self.is_clean
        self._index -= 1
        command = self._commands[self._index]
        command.undo(self.scene)
        self._merge_open = False
        self.document_changed.emit(command.paths())
        self._announce(was)

    def redo(self) -> None:
        if not self.can_redo:
            raise CommandError("nothing to redo")
        was = self.is_clean
        command = self._commands[self._index]
        command.do(self.scene)
        self._index += 1
        self._merge_open = False
        self.document_changed.emit(command.paths())
        self._announce(was)

    def begin_macro(self, text: str) -> None:
        """Start grouping pushes into one step (macros nest; undo is off until the end)."""
        self._macros.append(Macro(text))

    def end_macro(self) -> None:
        if not self._macros:
            raise CommandError("end_macro without begin_macro")
        macro = self._macros.pop()
        if self._macros:
            self._macros[-1].children.append(macro)
            return
        if not macro.children:
            self.state_changed.emit()
            return
        was = self._clean == self._index  # the open macro hid cleanliness
        del self._commands[self._index:]
        if self._clean is not None and self._clean > self._index:
            self._clean = None
        self._commands.append(macro)
        self._index += 1
        self._merge_open = False
        self._announce(was)

    def abort_macro(self) -> None:
        """Undo what the innermost open macro did and drop it."""
        if not self._macros:
            raise CommandError("abort_macro without begin_macro")
        macro = self._macros.pop()
        macro.undo(self.scene)
        self.document_changed.emit(macro.paths())
        self.state_changed.emit()

    def clear(self) -> None:
        """Forget all history; the current state becomes the clean one (after loading)."""
        if self._macros:
            raise CommandError("clear while a macro is open")
        was = self.is_clean
        self._commands.clear()
        self._index = 0
        self._clean = 0
        self._announce(was)

    def _announce(self, was_clean: bool) -> None:
        self.state_changed.emit()
        if self.is_clean != was_clean:
            self.clean_changed.emit(self.is_clean)
