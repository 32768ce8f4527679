"""One combined stdout+stderr log per run of a replica, rotated by size behind the process's
back.

The replica writes through an O_APPEND descriptor the agent cannot reopen, so rotation is
copy-then-truncate (logrotate's copytruncate): current.log is copied to current.log.1 (older
pieces shift to .2 and so on) and then truncated; O_APPEND makes the next write land at the new
end instead of leaving a hole. Lines written between the copy and the truncate are lost; that
window is one file copy long. When a new run begins, the last run's pieces are joined into
previous.log (what `logs --previous` shows).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_CHUNK = 65536


class ReplicaLogs:
    def __init__(self, directory: str | Path, max_bytes: int = 10 * 2**20, backups: int = 2):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.backups = backups
        self.current = self.directory / "current.log"
        self.previous = self.directory / "previous.log"

    def new_run(self) -> str:
        """A run begins: the last run's pieces become previous.log, current.log starts empty.
        Returns the path to give to SpawnSpec.log_path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        pieces = [path for path in self._pieces() if path.exists()]
        if pieces:
            _concatenate(pieces, self.previous)
            for path in pieces:
                path.unlink()
        _replace_with_empty(self.current)
        return str(self.current)

    def rotate_if_needed(self) -> bool:
        """Copy-truncate current.log into current.log.1 when it is over max_bytes."""
        try:
            if self.current.stat().st_size <= self.max_bytes:
                return False
        except FileNotFoundError:
            return False
        for n in range(self.backups, 1, -1):
            older = self._rotated(n - 1)
            if older.exists():
                older.replace(self._rotated(n))
        if self.backups:
            shutil.copyfile(self.current, self._rotated(1))
        os.truncate(self.current, 0)
        return True

    def read(self, *, previous: bool = False, tail: int | None = None) -> bytes:
        """The whole log of the current run (or the previous one), oldest first, or its last
        `tail` lines. Empty if there is none."""
        pieces = [self.previous] if previous else self._pieces()
        data = b""
        for path in reversed(pieces):  # newest first, so a tail can stop early
            try:
                data = path.read_bytes() + data
            except FileNotFoundError:
                continue
            if tail is not None and data.count(b"\n") > tail:
                break
        return data if tail is None else _last_lines(data, tail)

    def follow(self, stop: Callable[[], bool], poll: float = 0.1) -> Iterator[bytes]:
        """Yield what is appended to current.log from now on until stop() is true.

        A file that shrank was rotated: what was written after our position and before the copy
        is read from current.log.1, then reading starts again at 0. A new current.log (new run)
        is followed from its start.
        """
        position = _size(self.current)
        inode = _inode(self.current)
        while not stop():
            if _inode(self.current) != inode:
                inode, position = _inode(self.current), 0
            size = _size(self.current)
            if size < position:
                if missed := _read_from(self._rotated(1), position):
                    yield missed
                position = 0
            if size > position:
                data = _read_from(self.current, position)
                position += len(data)
                yield data
            else:
                time.sleep(poll)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _rotated(self, n: int) -> Path:
        return self.directory / f"current.log.{n}"

    def _pieces(self) -> list[Path]:
        """The current run's files, oldest first."""
        return [self._rotated(n) for n in range(self.backups, 0, -1)] + [self.current]


def _concatenate(pieces: list[Path], destination: Path) -> None:
    partial = destination.with_suffix(".partial")
    with partial.open("wb") as out:
        for path in pieces:
            with path.open("rb") as piece:
                shutil.copyfileobj(piece, out, _CHUNK)
    partial.replace(destination)


def _replace_with_empty(path: Path) -> None:
    """Swap in a new empty file atomically, so a follower sees a new inode, never a gap."""
    partial = path.with_suffix(".new")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640))
    partial.replace(path)


def _last_lines(data: bytes, count: int) -> bytes:
    if count <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(position)
            return f.read()
    except FileNotFoundError:
        return b""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
