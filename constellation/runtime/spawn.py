"""Start a replica as pid 1 of its own namespaces with no helper process left behind.

fork (C1) -> C1 joins the replica's cgroups -> unshare -> fork (C2, pid 1 of the new pid
namespace) -> C1 reports C2's pid and exits -> C2, re-parented to the agent (a child subreaper),
sets up mounts, hostname, network, user and capabilities -> exec. Failures before exec come back
through a close-on-exec pipe, as in subprocess, so spawn() either returns a process that is
running the requested program or raises SpawnError saying which step failed and why.

The agent is multi-threaded, so everything the children do is decided in the parent: they run a
precomputed list of steps (plain system calls on prepared arguments) and never import a module,
look up a user or take a lock another thread might hold.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import gc
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from constellation.runtime import linux
from constellation.runtime.users import UserIds, resolve_user

NAMESPACES: Mapping[str, int] = {
    "pid": linux.CLONE_NEWPID,
    "mount": linux.CLONE_NEWNS,
    "uts": linux.CLONE_NEWUTS,
    "ipc": linux.CLONE_NEWIPC,
    "net": linux.CLONE_NEWNET,
    "cgroup": linux.CLONE_NEWCGROUP,
}
DEFAULT_NAMESPACES = frozenset({"pid", "mount", "uts", "ipc"})
TINI = "/usr/bin/tini-static"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PRIVATE_TMP_OPTIONS = b"mode=1777,size=64m"
_HOST_NAME_MAX = 64
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40
# struct ifreq: a 16-byte name and a 24-byte union whose first member is the short flags
_LO_UP = struct.pack("16sh22x", b"lo", _IFF_UP_LOOPBACK_RUNNING)
_ALL_SIGNALS = tuple(
    sig for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP)
)

# A step of a child's program: what it does (for the error message), a call, its arguments.
Step = tuple[str, Callable[..., object], tuple[Any, ...]]


class SpawnError(Exception):
    """The replica could not be started; the message says which step failed and why."""


@dataclass(frozen=True)
class SpawnSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    hostname: str
    log_path: str  # stdout+stderr appended here (O_APPEND, 0o640), opened by the parent
    namespaces: frozenset[str] = DEFAULT_NAMESPACES  # subset of NAMESPACES
    network: Literal["host", "none", "private"] = "host"  # none/private: a new net ns, lo up
    user: str = "nobody"
    working_dir: str | None = None
    read_only_paths: Sequence[str] = ()
    private_tmp: bool = True
    no_new_privileges: bool = True
    capabilities: Sequence[str] = ()  # e.g. ("CAP_NET_BIND_SERVICE",); all others dropped
    cgroup_procs: Sequence[str] = ()  # cgroup.procs files to join before unshare
    init: str | None = None  # tini-static, or None to exec the workload as pid 1


@dataclass(frozen=True)
class Spawned:
    pid: int  # host pid of the replica's pid 1
    pidfd: int  # the caller owns it
    start_time: int  # /proc/<pid>/stat starttime (clock ticks): tells a reused pid apart
    started_at: float  # time.time() when exec succeeded


@dataclass(frozen=True)
class Target:
    """The program the last child becomes and the identity it runs with, computed in the
    parent. `executables` are the paths tried in turn for argv[0], as execvp would."""

    executables: tuple[bytes, ...]
    argv: tuple[bytes, ...]
    env: Mapping[bytes, bytes]
    ids: UserIds
    capabilities: tuple[int, ...]
    no_new_privileges: bool
    working_dir: str
    stdout: int  # becomes stdout and stderr; stdin is /dev/null


def default_init() -> str | None:
    """Debian's tini-static when installed: a 50 KB pid 1 that reaps zombies."""
    return TINI if os.access(TINI, os.X_OK) else None


def spawn(spec: SpawnSpec, *, reaper_is_parent: bool = False) -> Spawned:
    """Start `spec` and return once its program has been exec'd.

    The calling process must be a child subreaper (linux.set_child_subreaper()): the replica's
    pid 1 is its grandchild, re-parented to it when the intermediate child exits. With
    `reaper_is_parent` the caller's own parent is (`spawner.py`), and pid 1 goes there.
    """
    namespaces = _validate(spec)
    ids = _resolve(spec.user)
    capabilities = _capability_numbers(spec.capabilities)
    argv = _init_argv(spec) + tuple(spec.argv)
    try:
        log_fd = os.open(spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except OSError as error:
        raise SpawnError(f'open log "{spec.log_path}": {error.strerror}') from None
    try:
        target = Target(
            executables=candidates(argv[0], spec.env),
            argv=tuple(os.fsencode(arg) for arg in argv),
            env={os.fsencode(k): os.fsencode(v) for k, v in spec.env.items()},
            ids=ids,
            capabilities=capabilities,
            no_new_privileges=spec.no_new_privileges,
            working_dir=spec.working_dir or "/",
            stdout=log_fd,
        )
        enter = [
            *join_cgroup_steps(spec.cgroup_procs),
            ("unshare namespaces", linux.unshare, (_clone_flags(namespaces),)),
        ]
        pid = launch(enter, _setup_steps(spec, namespaces), target, reaper_is_parent)
    finally:
        os.close(log_fd)
    started_at = time.time()
    # the pid is ours until we reap it, so its stat is there (if only as a zombie's)
    return Spawned(pid, linux.pidfd_open(pid), linux.start_time(pid) or 0, started_at)


def _capability_numbers(names: Sequence[str]) -> tuple[int, ...]:
    """Numbers of capability names, with or without the CAP_ prefix (Kubernetes omits it)."""
    numbers = []
    for name in names:
        full = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
        number = linux.CAPABILITIES.get(full)
        if number is None:
            raise SpawnError(f'unknown capability "{name}"')
        if number > _last_cap():
            raise SpawnError(f'capability "{name}" is newer than this kernel')
        numbers.append(number)
    return tuple(numbers)


def candidates(program: str, env: Mapping[str, str]) -> tuple[bytes, ...]:
    """The paths execvp would try for `program`, searched in the replica's own PATH."""
    if "/" in program:
        return (os.fsencode(program),)
    path = env.get("PATH", DEFAULT_PATH)
    return tuple(os.fsencode(os.path.join(folder, program)) for folder in path.split(":"))


def join_cgroup_steps(procs_files: Sequence[str]) -> list[Step]:
    return [(f'join cgroup "{path}"', _join_cgroup, (os.fsencode(path),)) for path in procs_files]


def launch(
    enter: Sequence[Step], setup: Sequence[Step], target: Target, reaper_is_parent: bool = False
) -> int:
    """Run `enter` in a first child, fork the second, run `setup` there and exec `target`.

    Returns the host pid of the second child once it has exec'd; it is a child of the caller
    (a subreaper) from then on. Raises SpawnError with the failed step and errno message.
    """
    if not reaper_is_parent and not linux.is_child_subreaper():
        raise SpawnError(
            "the calling process is not a child subreaper (call linux.set_child_subreaper()): "
            "the replica's pid 1 must be re-parented to it"
        )
    program = [*setup, *_become_steps(target)]
    report_r, report_w = os.pipe()
    try:
        first = _fork()
        if first == 0:
            _run_child(report_w, lambda: _first_child(enter, program, target, report_w))
        os.close(report_w)
        report_w = -1
        report = _read_to_end(report_r)
    finally:
        os.close(report_r)
        if report_w >= 0:
            os.close(report_w)
    _, first_status = os.waitpid(first, 0)
    return _outcome(report, first_status)


def _validate(spec: SpawnSpec) -> frozenset[str]:
    """Reject what cannot work before forking; returns the namespaces to create."""
    unknown = spec.namespaces - NAMESPACES.keys()
    if unknown:
        known = ", ".join(sorted(NAMESPACES))
        raise SpawnError(f"unknown namespaces {sorted(unknown)} (known: {known})")
    if spec.network not in ("host", "none", "private"):
        raise SpawnError(f'network "{spec.network}": must be host, none or private')
    if spec.network == "host" and "net" in spec.namespaces:
        raise SpawnError('namespaces has "net" but network is "host": use network none/private')
    namespaces = spec.namespaces | ({"net"} if spec.network != "host" else set())
    if "mount" not in namespaces:
        for needs_mounts, what in (
            ("pid" in namespaces, "a pid namespace (its own /proc)"),
            (spec.private_tmp, "privateTmp"),
            (spec.read_only_paths, "readOnlyPaths"),
        ):
            if needs_mounts:
                raise SpawnError(f"{what} needs the mount namespace")
    _validate_strings(spec)
    for path in spec.read_only_paths:
        if not os.path.isabs(path) or not os.path.exists(path):
            raise SpawnError(f'readOnlyPaths: "{path}" is not an existing absolute path')
    if spec.working_dir is not None and not os.path.isabs(spec.working_dir):
        raise SpawnError(f'workingDir "{spec.working_dir}" is not an absolute path')
    if spec.init is not None and not os.access(spec.init, os.X_OK):
        raise SpawnError(f'init "{spec.init}" is not an executable file')
    return frozenset(namespaces)


def _validate_strings(spec: SpawnSpec) -> None:
    if not spec.argv or not spec.argv[0]:
        raise SpawnError("argv is empty")
    if any("\0" in arg for arg in spec.argv):
        raise SpawnError("argv contains a NUL character")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise SpawnError(f'env "{key}": names must be non-empty without "=" or NUL')
    if not spec.hostname or len(spec.hostname.encode()) > _HOST_NAME_MAX:
        raise SpawnError(f'hostname "{spec.hostname}" must be 1 to {_HOST_NAME_MAX} bytes')


def _resolve(user: str) -> UserIds:
    try:
        return resolve_user(user)
    except ValueError as error:
        raise SpawnError(str(error)) from None


def _init_argv(spec: SpawnSpec) -> tuple[str, ...]:
    """tini -g: forward signals to the workload's whole process group, so a shell's children
    hear SIGTERM too. As pid 1 of a pid namespace tini reaps orphans already; without a pid
    namespace it needs -s (subreaper) to get them. Never -p: its parent-death signal would fire
    when C1 exits, and the agent must be able to restart without killing replicas.

    tini execs the workload itself, so a missing program is checked here to fail as early and
    as clearly as an exec without init does."""
    if spec.init is None:
        return ()
    if not any(os.path.exists(path) for path in candidates(spec.argv[0], spec.env)):
        raise SpawnError(f'exec "{spec.argv[0]}": No such file or directory')
    reaper = () if "pid" in spec.namespaces else ("-s",)
    return (spec.init, *reaper, "-g", "--")


@functools.cache
def _last_cap() -> int:
    return linux.last_cap()


def _clone_flags(namespaces: frozenset[str]) -> int:
    flags = 0
    for name in namespaces:
        flags |= NAMESPACES[name]
    return flags


def _setup_steps(spec: SpawnSpec, namespaces: frozenset[str]) -> list[Step]:
    """What pid 1 does in its new namespaces before it takes the replica's identity."""
    steps: list[Step] = []
    if "mount" in namespaces:
        # first, so that nothing mounted below propagates back to the host
        steps.append(("make mounts private", linux.mount, (None, b"/", None, _PRIVATE, None)))
    if {"pid", "mount"} <= namespaces:
        steps.append(("mount /proc", linux.mount, (b"proc", b"/proc", b"proc", _SAFE, None)))
    for path in spec.read_only_paths:
        raw = os.fsencode(path)
        if not os.path.ismount(path):
            steps.append((f'bind "{path}"', linux.mount, (raw, raw, None, _RBIND, None)))
        steps.append((f'make "{path}" read-only', linux.make_read_only, (raw,)))
    if spec.private_tmp:
        tmpfs = (b"tmpfs", b"/tmp", b"tmpfs", _NOSUID_NODEV, PRIVATE_TMP_OPTIONS)
        steps.append(("mount a private /tmp", linux.mount, tmpfs))
    if "uts" in namespaces:
        steps.append(("set hostname", linux.sethostname, (spec.hostname.encode(),)))
    if "net" in namespaces:
        steps.append(("bring lo up", _bring_lo_up, ()))
    return steps


_PRIVATE = linux.MS_REC | linux.MS_PRIVATE
_RBIND = linux.MS_BIND | linux.MS_REC
_NOSUID_NODEV = linux.MS_NOSUID | linux.MS_NODEV
_SAFE = _NOSUID_NODEV | linux.MS_NOEXEC


def _become_steps(target: Target) -> list[Step]:
    """Take the target's identity: own session, clean signals, user, capabilities, fds.

    The bounding set is cut while still root (it needs CAP_SETPCAP); capabilities to keep
    survive setuid through PR_SET_KEEPCAPS and exec as ambient capabilities.
    """
    ids, keep = target.ids, target.capabilities
    steps: list[Step] = [
        ("start a session", os.setsid, ()),
        ("drop capabilities", linux.drop_bounding_caps, (keep, _last_cap())),
    ]
    if keep and ids.uid != 0:
        steps.append(("keep capabilities", linux.set_keep_caps, ()))
    steps += [
        (f"setgroups {list(ids.groups)}", os.setgroups, (list(ids.groups),)),
        (f"setgid {ids.gid}", os.setgid, (ids.gid,)),
        (f"setuid {ids.uid}", os.setuid, (ids.uid,)),
        ("set capabilities", linux.capset, (linux.cap_state(keep),)),
    ]
    if keep:
        steps.append(("raise ambient capabilities", linux.raise_ambient, (keep,)))
    if target.no_new_privileges:
        steps.append(("set no_new_privs", linux.set_no_new_privs, ()))
    steps += [
        (f'chdir "{target.working_dir}"', os.chdir, (target.working_dir,)),
        ("redirect stdio", _redirect_stdio, (target.stdout,)),
        ("reset signals", linux.reset_signals, (_handled_signals(),)),
    ]
    return steps


def _fork() -> int:
    """fork with the garbage collector off and every signal blocked, as subprocess does: the
    children must not run a finalizer or a signal handler of the parent's. The last child
    unblocks signals just before exec, after resetting their handlers."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
    pid = os.fork()
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if gc_was_enabled:
            gc.enable()
    return pid


def _run_child(report: int, body: Callable[[], None]) -> NoReturn:
    """Run a child's body and exit; an error goes to the parent through `report`."""
    code = 0
    try:
        body()
    except BaseException as error:
        code = 127
        with contextlib.suppress(BaseException):
            os.write(report, b"error " + str(error).encode(errors="replace") + b"\0")
    finally:
        os._exit(code)


class _StepFailed(Exception):
    pass


def _run_steps(steps: Sequence[Step]) -> None:
    for what, call, args in steps:
        try:
            call(*args)
        except OSError as error:
            raise _StepFailed(f"{what}: {error.strerror}") from None


def _first_child(
    enter: Sequence[Step], program: Sequence[Step], target: Target, report: int
) -> None:
    _run_steps(enter)
    try:
        pid = linux.fork_single_threaded()
    except OSError as error:
        # EAGAIN here is often the replica's own pids limit: it must allow this second process
        raise _StepFailed(f"fork pid 1: {error.strerror}") from None
    if pid == 0:
        _run_steps(program)
        # keep only the report pipe (close-on-exec) besides stdio
        os.closerange(3, report)
        os.closerange(report + 1, 2**31 - 1)
        _exec(target)
    os.write(report, b"pid %d\0" % pid)
    # the parent waits for EOF: let it see it now, while this process is still exiting
    os.close(report)


def _exec(target: Target) -> NoReturn:
    """Try each candidate path like execvp: a missing one moves on, a denied one is
    remembered, anything else is final."""
    failure: OSError | None = None
    for path in target.executables:
        try:
            os.execve(path, target.argv, target.env)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                failure = error
                break
            if failure is None or error.errno == errno.EACCES:
                failure = error
    program = target.argv[0].decode(errors="replace")
    reason = failure.strerror if failure else "no candidate path"
    raise _StepFailed(f'exec "{program}": {reason}')


def _join_cgroup(procs_file: bytes) -> None:
    fd = os.open(procs_file, os.O_WRONLY)
    try:
        os.write(fd, b"%d" % os.getpid())
    finally:
        os.close(fd)


def _bring_lo_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _LO_UP)


def _handled_signals() -> tuple[int, ...]:
    """Signals whose disposition is not the default, to reset before unblocking signals in
    the last child: exec keeps ignored ones (Python ignores SIGPIPE), and a pending one must
    not run a Python handler in the child."""
    handled = {
        int(sig) for sig in _ALL_SIGNALS if signal.getsignal(sig) not in (signal.SIG_DFL, None)
    }
    return tuple(sorted(handled | _ignored_by_kernel()))


def _ignored_by_kernel() -> set[int]:
    """Signals this process ignores as the kernel sees it: also those Python cannot name, such
    as glibc's reserved 32 and 33, which a parent may have set ignored before exec'ing us."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("SigIgn:"):
                mask = int(line.split()[1], 16)
                return {bit + 1 for bit in range(64) if mask >> bit & 1}
    return set()


def _redirect_stdio(stdout: int) -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(stdout, 1)
    os.dup2(stdout, 2)


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _outcome(report: bytes, first_status: int) -> int:
    """The second child's pid from the children's report, or SpawnError with their error."""
    pid: int | None = None
    error: str | None = None
    for record in report.split(b"\0"):
        if record.startswith(b"pid "):
            pid = int(record[4:])
        elif record.startswith(b"error "):
            error = record[6:].decode(errors="replace")
    if error is not None:
        if pid is not None:
            os.waitpid(pid, 0)  # it exits right after reporting
        raise SpawnError(error)
    if pid is None:
        raise SpawnError(f"the setup child ended without a report ({_describe(first_status)})")
    return pid


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
