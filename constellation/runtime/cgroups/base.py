"""What the two cgroup drivers share: the public types, file access that fails with one clear
message, and the kill and remove logic. A cgroup is one directory per hierarchy (v1) or a
single directory (v2); everything here works on that list of directories."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Generic, Literal, Protocol, TypeVar

# How long one kill round waits for the killed processes to leave before signalling again.
KILL_ROUND_SECONDS = 0.1


class CgroupError(Exception):
    """A cgroup operation failed; the message says what, on which path and why."""


@dataclass(frozen=True)
class Limits:
    """What a replica may use; None is unlimited. Applying Limits sets all three, so a limit
    removed from the spec is lifted on the next create."""

    cpu_millicores: int | None = None
    memory_bytes: int | None = None
    pids: int | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None and value <= 0:
                raise ValueError(f"Limits.{field.name} must be positive or None, not {value}")


@dataclass(frozen=True)
class Stats:
    cpu_usage_ns: int
    memory_current: int
    memory_peak: int
    pids: int
    oom_kills: int


class Cgroup(Protocol):
    name: str

    def procs_files(self) -> list[str]: ...
    def join(self, pid: int) -> None: ...
    def pids(self) -> list[int]: ...
    def stats(self) -> Stats: ...
    def kill(self, timeout: float = 5.0) -> None: ...
    def remove(self) -> None: ...


class CgroupManager(Protocol):
    version: Literal["v1", "v2"]
    parent: str

    def create(self, name: str, limits: Limits) -> Cgroup: ...
    def open(self, name: str) -> Cgroup | None: ...
    def names(self) -> list[str]: ...
    def remove_parent(self) -> None: ...


def failure(action: str, path: str, err: OSError) -> CgroupError:
    code = errno.errorcode.get(err.errno or 0, str(err.errno))
    return CgroupError(f"cannot {action} {path}: {code} ({err.strerror})")


def read_text(path: str, missing: str | None = None) -> str:
    """The file's whole content; `missing` instead when given and the file does not exist."""
    chunks = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        if missing is not None:
            return missing
        raise failure("read", path, err) from None
    except OSError as err:
        raise failure("read", path, err) from None
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as err:
        raise failure("read", path, err) from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def read_int(path: str, missing: int | None = None) -> int:
    return int(read_text(path, None if missing is None else str(missing)))


def read_key(path: str, key: str) -> int:
    """The value of `key` in a flat-keyed file such as cpu.stat ("usage_usec 123"); 0 if absent."""
    for line in read_text(path).splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def write_text(path: str, value: str) -> None:
    # No O_CREAT: cgroupfs has every interface file already; a missing one means the
    # controller is not there, and that must fail rather than create a plain file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise failure(f"write {value!r} to", path, err) from None


def make_dirs(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise failure("create", path, err) from None


def remove_dir(path: str) -> bool:
    """rmdir; True if gone (or never there), False if it still has child cgroups or processes."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as err:
        if err.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise failure("remove", path, err) from None
    return True


def check_name(name: str) -> str:
    if not name or name in (".", "..") or any(c in name for c in "/\0\n"):
        raise CgroupError(f"invalid cgroup name {name!r}: one path component, not '.' or '..'")
    return name


def check_parent(parent: str) -> str:
    for part in parent.split("/"):
        check_name(part)
    return parent


def signal_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # exited since the cgroup was read
            os.kill(pid, signal.SIGKILL)


class DirCgroup(ABC):
    """A cgroup made of `dirs`, one per hierarchy it spans."""

    def __init__(self, name: str, dirs: Sequence[str]) -> None:
        self.name = name
        self.dirs = tuple(dict.fromkeys(dirs))  # a combined "cpu,cpuacct" mount appears once

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.dirs})"

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def join(self, pid: int) -> None:
        for path in self.procs_files():
            write_text(path, str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.procs_files():
            found.update(int(pid) for pid in read_text(path, missing="").split())
        return sorted(found)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL everything until empty. Rounds repeat because a process may fork between
        reading the list and signalling it; the drivers make each round as tight as they can."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() >= deadline:
                raise CgroupError(
                    f"cannot kill cgroup {self.name}: {len(pids)} processes still in "
                    f"{', '.join(self.dirs)} after {timeout} s (pids {pids[:10]})"
                )
            self.kill_round(pids)
            self.wait_empty(min(deadline, time.monotonic() + KILL_ROUND_SECONDS))

    def wait_empty(self, until: float) -> None:
        pause = 0.0005
        while self.pids() and time.monotonic() < until:
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def remove(self) -> None:
        if self.pids():
            self.kill()
        for path in self.dirs:
            if not remove_dir(path):
                raise CgroupError(f"cannot remove {path}: it has child cgroups or processes")

    @abstractmethod
    def stats(self) -> Stats: ...

    @abstractmethod
    def kill_round(self, pids: list[int]) -> None:
        """Signal everything in the cgroup once; `pids` were just read from it."""


CgroupT = TypeVar("CgroupT", bound=DirCgroup)


class DirManager(ABC, Generic[CgroupT]):
    """Cgroups named `<hierarchy>/<parent>/<name>` in each of `hierarchies`."""

    def __init__(
        self, version: Literal["v1", "v2"], parent: str, hierarchies: Sequence[str]
    ) -> None:
        self.version = version
        self.parent = check_parent(parent)
        self.hierarchies = tuple(dict.fromkeys(hierarchies))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parent!r}, {self.hierarchies})"

    def create(self, name: str, limits: Limits) -> CgroupT:
        cgroup = self.cgroup(check_name(name))
        self.prepare_parent()
        for path in cgroup.dirs:
            make_dirs(path)
        self.apply(cgroup, limits)
        return cgroup

    def open(self, name: str) -> CgroupT | None:
        cgroup = self.cgroup(check_name(name))
        # Any one directory is enough: a create cut short still needs removing.
        return cgroup if any(os.path.isdir(path) for path in cgroup.dirs) else None

    def names(self) -> list[str]:
        found: set[str] = set()
        for hierarchy in self.hierarchies:
            try:
                with os.scandir(os.path.join(hierarchy, self.parent)) as entries:
                    found.update(e.name for e in entries if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                continue
        return sorted(found)

    def remove_parent(self) -> None:
        """rmdir the parent, then each of its ancestors below the root, stopping at the first
        that still has children (another node's parent may share `constellation/`)."""
        parts = self.parent.split("/")
        for hierarchy in self.hierarchies:
            for depth in range(len(parts), 0, -1):
                if not remove_dir(os.path.join(hierarchy, *parts[:depth])):
                    break

    def prepare_parent(self) -> None:
        """Make the parent ready for children (mkdir -p is left to create)."""

    @abstractmethod
    def cgroup(self, name: str) -> CgroupT: ...

    @abstractmethod
    def apply(self, cgroup: CgroupT, limits: Limits) -> None: ...
