"""Supervision of replicas through pidfds: reap, signal and re-adopt them without races on pid
reuse, and run probe commands inside their namespaces.

A pidfd names one process for good, so a signal never reaches a stranger that inherited the
pid; (pid, start time) is what the agent writes down to find its replicas again after a restart.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

from constellation.runtime import linux, spawn
from constellation.runtime.linux import start_time
from constellation.runtime.users import resolve_user

__all__ = ["ExitStatus", "adopt", "exec_in", "reap", "signal_pidfd", "start_time"]

PROBE_OUTPUT_LIMIT = 4096
# enter the user-visible namespaces first and the mount namespace last (it changes root and cwd)
_PROBE_NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code or a signal. Both are None for a re-adopted process
    that is not our child: it has exited, but its status went to its real parent."""

    code: int | None
    signal: int | None


def reap(pidfd: int) -> ExitStatus | None:
    """The exit status if the process has ended (reaping it), None while it runs."""
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        # not our child (adopted after an agent restart): a pidfd is readable once it exits
        return ExitStatus(None, None) if _readable(pidfd, 0) else None
    if result is None:
        return None
    return _exit_status(result)


def adopt(pid: int, expected_start_time: int) -> int | None:
    """A pidfd for `pid` if it is still the process that started at `expected_start_time`.

    The start time is read after the pidfd is open: had the pid been reused before, the check
    sees the newcomer's start time and fails, so the pidfd never names a stranger.
    """
    try:
        pidfd = linux.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if start_time(pid) != expected_start_time:
        os.close(pidfd)
        return None
    return pidfd


def signal_pidfd(pidfd: int, sig: int) -> None:
    """Send `sig`; a process that has already exited is no error."""
    with contextlib.suppress(ProcessLookupError):
        linux.pidfd_send_signal(pidfd, sig)


def exec_in(
    pid: int,
    argv: Sequence[str],
    *,
    user: str,
    cgroup_procs: Sequence[str],
    network_ns: bool,
    timeout: float,
) -> tuple[int | None, bytes]:
    """Run `argv` inside the namespaces and cgroups of the running replica whose pid 1 is
    `pid`, as `user` with no capabilities and no_new_privs, for an exec probe.

    Returns the exit code (128 + signal if killed; None on timeout) and the first 4 KiB of
    stdout+stderr. The command runs in its own process group, which is killed when it ends or
    times out, so a probe leaves nothing behind. Raises SpawnError if it could not be exec'd.
    The caller must be a child subreaper.
    """
    try:
        ids = resolve_user(user)
    except ValueError as error:
        raise spawn.SpawnError(str(error)) from None
    deadline = time.monotonic() + timeout
    out_r, out_w = os.pipe()
    try:
        target = spawn.Target(
            executables=spawn.candidates(argv[0], {}),
            argv=tuple(os.fsencode(arg) for arg in argv),
            env={b"PATH": spawn.DEFAULT_PATH.encode()},
            ids=ids,
            capabilities=(),
            no_new_privileges=True,
            working_dir="/",
            stdout=out_w,
        )
        probe = _launch_in(pid, network_ns, cgroup_procs, target)
        os.close(out_w)
        out_w = -1
        return _supervise(probe, out_r, deadline)
    finally:
        os.close(out_r)
        if out_w >= 0:
            os.close(out_w)


def _launch_in(
    pid: int, network_ns: bool, cgroup_procs: Sequence[str], target: spawn.Target
) -> int:
    kinds = [kind for kind in _PROBE_NAMESPACES if network_ns or kind != "net"]
    namespace_fds: list[int] = []
    try:
        for kind in kinds:
            namespace_fds.append(_open_namespace(pid, kind))
        enter = spawn.join_cgroup_steps(cgroup_procs)
        for kind, fd in zip(kinds, namespace_fds, strict=True):
            enter.append((f"enter the {kind} namespace", linux.setns, (fd, 0)))
        return spawn.launch(enter, (), target)
    finally:
        for fd in namespace_fds:
            os.close(fd)


def _open_namespace(pid: int, kind: str) -> int:
    try:
        return os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
    except OSError as error:
        raise spawn.SpawnError(f"replica {pid}: {kind} namespace: {error.strerror}") from None


def _supervise(probe: int, output: int, deadline: float) -> tuple[int | None, bytes]:
    """Collect the probe's output until it exits or the deadline passes, then kill its
    process group (its session leader is the probe, so the group id is its pid, and that pid
    cannot be reused before we reap it) and reap it."""
    pidfd = linux.pidfd_open(probe)
    try:
        data, exited = _collect(output, pidfd, deadline)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(probe, signal.SIGKILL)
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    finally:
        os.close(pidfd)
    if not exited or result is None:
        return None, data
    status = _exit_status(result)
    return (status.code if status.code is not None else 128 + (status.signal or 0)), data


def _collect(output: int, pidfd: int, deadline: float) -> tuple[bytes, bool]:
    """Read up to the limit (draining the rest so the probe never blocks on a full pipe)
    until the probe exits; False if the deadline came first."""
    data = bytearray()
    poller = select.poll()
    poller.register(output, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            if fd == pidfd:
                os.set_blocking(output, False)
                _read_available(output, data)
                return bytes(data), True
            if not _read_into(output, data):
                poller.unregister(output)
    return bytes(data), False


def _read_into(fd: int, data: bytearray) -> bool:
    chunk = os.read(fd, 65536)
    data += chunk[: PROBE_OUTPUT_LIMIT - len(data)]
    return bool(chunk)


def _read_available(fd: int, data: bytearray) -> None:
    try:
        while _read_into(fd, data):
            pass
    except BlockingIOError:
        pass


def _readable(fd: int, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


def _exit_status(result: os.waitid_result) -> ExitStatus:
    if result.si_code == os.CLD_EXITED:
        return ExitStatus(result.si_status, None)
    return ExitStatus(None, result.si_status)
