"""Base of the emulators: a pty pair behind a stable symlink, served by a thread."""

from __future__ import annotations

import os
import select
import threading
import tty
from pathlib import Path


class PtyDevice:
    def __init__(self, link: str | Path) -> None:
        self.link = Path(link)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._master: int | None = None
        self._slave: int | None = None
        self._plug()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        return str(self.link)

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        tmp = self.link.with_name(self.link.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link)
        # Keep the slave open too, so the master never sees EIO between client sessions.
        with self._lock:
            self._master, self._slave = master, slave

    def unplug(self) -> None:
        """The device disappears: clients get an I/O error and the path is gone."""
        with self._lock:
            fds, self._master, self._slave = (self._master, self._slave), None, None
        self.link.unlink(missing_ok=True)
        for fd in fds:
            if fd is not None:
                os.close(fd)

    def replug(self) -> None:
        self._plug()

    def write(self, data: bytes) -> None:
        with self._lock:
            fd = self._master
        if fd is not None:
            try:
                os.write(fd, data)
            except OSError:
                pass  # unplugged meanwhile

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fd = self._master
            if fd is None:
                self._stop.wait(0.01)
                self.tick()
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.002)
                data = os.read(fd, 4096) if ready else b""
            except (OSError, ValueError):
                data = b""
            if data:
                self.received(data)
            self.tick()

    def received(self, data: bytes) -> None:
        """Bytes the client wrote."""

    def tick(self) -> None:
        """Called every few milliseconds: advance the device's own state."""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self.unplug()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(device: PtyDevice) -> None:
    """Run an emulator until Ctrl-C (``python -m robot.serial.emulators.<name> LINK``)."""
    print(f"{type(device).__name__} on {device.path} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        device.close()
