"""Thin ctypes wrappers for the Linux system calls Python 3.11 lacks (unshare, setns, mount,
capabilities, prctl), so the runtime can build namespaces without a helper binary.

Every wrapper raises OSError with the errno, like the os module does. They are safe to call in a
forked child of a multi-threaded process: the library and its function pointers are loaded here,
at import, so a call only crosses into libc.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
from collections.abc import Iterable

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

MOUNT_ATTR_RDONLY = 0x1
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
# mount_setattr(2) has one number on every architecture (added after the numbers were unified);
# called through syscall(2) because glibc only wraps it from 2.36 on.
_SYS_MOUNT_SETATTR = 442

_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

CAPABILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_KILL",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN",
            "CAP_NET_RAW",
            "CAP_IPC_LOCK",
            "CAP_IPC_OWNER",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN",
            "CAP_SYS_BOOT",
            "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE",
            "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG",
            "CAP_MKNOD",
            "CAP_LEASE",
            "CAP_AUDIT_WRITE",
            "CAP_AUDIT_CONTROL",
            "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN",
            "CAP_SYSLOG",
            "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ",
            "CAP_PERFMON",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        )
    )
}

_libc = ctypes.CDLL(None, use_errno=True)

_unshare = _libc.unshare
_unshare.argtypes = [ctypes.c_int]
_setns = _libc.setns
_setns.argtypes = [ctypes.c_int, ctypes.c_int]
_mount = _libc.mount
_mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_sethostname = _libc.sethostname
_sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_capset = _libc.capset
_fork = _libc.fork
_sigprocmask = _libc.sigprocmask
_sigprocmask.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
# The kernel's struct sigaction for SIG_DFL (handler 0, no flags, restorer or mask), given to
# rt_sigaction(2) directly: glibc's signal() refuses its reserved signals 32 and 33, which a
# parent may still have left ignored.
_DEFAULT_ACTION = (ctypes.c_ulong * 4)(0, 0, 0, 0)
# rt_sigaction's number differs by architecture (mount_setattr's, a new call, does not).
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}.get(platform.machine(), 13)
_KERNEL_SIGSET_BYTES = 8
_SIG_SETMASK = 2
_EMPTY_SIGSET = bytes(128)  # sigset_t: 1024 bits, all clear
_syscall = _libc.syscall


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


_CapPair = _CapData * 2
_capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapPair)]


def _check(result: int) -> int:
    if result == -1:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def unshare(flags: int) -> None:
    _check(_unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_setns(fd, nstype))


def mount(
    source: bytes | None, target: bytes, fstype: bytes | None, flags: int, data: bytes | None
) -> None:
    _check(_mount(source, target, fstype, flags, data))


def make_read_only(path: bytes) -> None:
    """Make the mount at `path` and every mount below it read-only (mount_setattr, Linux 5.12):
    a remount with MS_RDONLY would change the top mount only."""
    attr = _MountAttr(attr_set=MOUNT_ATTR_RDONLY)
    _check(
        _syscall(
            ctypes.c_long(_SYS_MOUNT_SETATTR),
            ctypes.c_int(_AT_FDCWD),
            ctypes.c_char_p(path),
            ctypes.c_uint(_AT_RECURSIVE),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        )
    )


def sethostname(name: bytes) -> None:
    _check(_sethostname(name, len(name)))


def _prctl_call(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_prctl(option, arg2, arg3, 0, 0))


def set_child_subreaper(enabled: bool = True) -> None:
    """Become (or stop being) the parent of orphaned descendants instead of init: how the
    agent gets its replicas' pid 1 as children, to wait on them through pidfds."""
    _prctl_call(_PR_SET_CHILD_SUBREAPER, int(enabled))


def is_child_subreaper() -> bool:
    flag = ctypes.c_int(0)
    _prctl_call(_PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return flag.value != 0


def set_no_new_privs() -> None:
    _prctl_call(_PR_SET_NO_NEW_PRIVS, 1)


def set_keep_caps() -> None:
    """Keep the permitted set through setuid away from root, so capabilities can be kept."""
    _prctl_call(_PR_SET_KEEPCAPS, 1)


def last_cap() -> int:
    """The highest capability this kernel knows; dropping a higher one fails with EINVAL."""
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        return int(f.read())


def drop_bounding_caps(keep: Iterable[int], last: int | None = None) -> None:
    """Drop every capability but `keep` from the bounding set (needs CAP_SETPCAP)."""
    kept = set(keep)
    for cap in range(last_cap() + 1 if last is None else last + 1):
        if cap not in kept:
            _prctl_call(_PR_CAPBSET_DROP, cap)


CapState = tuple[_CapHeader, "ctypes.Array[_CapData]"]


def cap_state(keep: Iterable[int]) -> CapState:
    """The capset(2) arguments for permitted = effective = inheritable = `keep`, built ahead
    so that a forked child only makes the call."""
    words = [0, 0]
    for cap in keep:
        words[cap // 32] |= 1 << (cap % 32)
    return _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), _CapPair(
        *(_CapData(word, word, word) for word in words)
    )


def capset(state: CapState) -> None:
    header, data = state
    _check(_capset(ctypes.byref(header), ctypes.byref(data)))


def set_caps(keep: Iterable[int]) -> None:
    """Set the permitted, effective and inheritable sets to exactly `keep` (capset, version 3)."""
    capset(cap_state(keep))


def raise_ambient(keep: Iterable[int]) -> None:
    """Raise `keep` as ambient capabilities: the only way a non-root program keeps them through
    execve without file capabilities."""
    for cap in keep:
        _prctl_call(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap)


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (/proc/<pid>/stat field 22): a pid and
    its start time name one process even after the pid number is reused. None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # field 2 (comm) may hold spaces and parentheses: count from after its last ")"
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def fork_single_threaded() -> int:
    """fork(2) without Python's at-fork machinery, which costs a child of a large process
    about 0.2 ms of page copies. Only for a process with one thread (a child of os.fork), where
    the interpreter has nothing to repair in the new child."""
    return _check(_fork())


def reset_signals(signals: Iterable[int]) -> None:
    """Default disposition for `signals`, then unblock every signal. Done in libc rather than
    through the signal module, whose enum conversions cost a forked child many page copies."""
    action = ctypes.byref(_DEFAULT_ACTION)
    for sig in signals:
        _check(_syscall(_SYS_RT_SIGACTION, sig, action, None, _KERNEL_SIGSET_BYTES))
    _check(_sigprocmask(_SIG_SETMASK, _EMPTY_SIGSET, None))


def pidfd_open(pid: int) -> int:
    return os.pidfd_open(pid)


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    signal.pidfd_send_signal(pidfd, sig)


_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int) -> None:
    """Cap glibc's malloc arenas (one per thread by default, up to 8 per core): a process of
    many mostly idle threads keeps each one's freed memory resident. Call before threads
    start; a no-op where the C library has no mallopt."""
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, count)


def release_free_memory() -> None:
    """Hand memory the C allocator holds but no longer uses back to the kernel (glibc's
    malloc_trim): after a burst of starts a long-running agent keeps megabytes of freed heap
    resident otherwise. A no-op where the C library has no malloc_trim."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
