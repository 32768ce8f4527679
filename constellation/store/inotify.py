"""A minimal inotify binding (ctypes): wakes SQLite watchers when another process commits.

Every commit in WAL mode appends to the `-wal` file, so IN_MODIFY on it is a cross-process
"something was written" signal that costs writers nothing and readers no polling.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

IN_MODIFY = 0x00000002
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Inotify:
    """One inotify descriptor watching one file for modifications."""

    def __init__(self, path: Path) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd
        if _libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, f"inotify_add_watch {path} failed")

    def drain(self) -> None:
        """Discard pending notifications: the reader re-reads the log, not the events."""
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)
