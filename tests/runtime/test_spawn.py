"""spawn() for real, as root: what a replica can see and do, and how failures are reported."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from constellation.runtime import linux
from constellation.runtime.process import ExitStatus
from constellation.runtime.spawn import SpawnError, SpawnSpec, default_init, spawn
from tests.runtime.conftest import NEEDS_ROOT
from tests.runtime.spawn_helpers import (
    pids_cgroup,
    replica,
    run,
    sh,
    shared_dir,
    spec,
    subreaper_without_leaked_mounts,
    wait_exit,
)

pytestmark = NEEDS_ROOT
__all__ = ["pids_cgroup", "shared_dir", "subreaper_without_leaked_mounts"]

OK = ExitStatus(0, None)
NOBODY = 65534
PYTHON = "/usr/bin/python3"
TINI = default_init()
needs_tini = pytest.mark.skipif(TINI is None, reason="needs Debian's tini (apt-get install tini)")


def status_fields(log: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in log.splitlines() if ":\t" in line)


def test_replica_is_pid_1_and_sees_only_its_own_processes(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "echo $$; ls /proc | grep -E '^[0-9]+$'")
    pid, *visible = log.split()
    assert status == OK
    assert pid == "1"
    assert str(os.getpid()) not in visible
    assert "1" in visible
    assert all(int(p) < 10 for p in visible), visible


def test_replica_has_its_own_hostname(tmp_path: Path) -> None:
    host = socket.gethostname()
    status, log = sh(tmp_path, "hostname", hostname="web-7")
    assert (status, log) == (OK, "web-7\n")
    assert socket.gethostname() == host


def test_replica_runs_as_nobody_by_default(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "id -u; id -g; id -G")
    assert (status, log.split()) == (OK, [str(NOBODY)] * 3)


def test_replica_runs_as_the_given_user(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "id -u; id -g", user="1234:4321")
    assert (status, log.split()) == (OK, ["1234", "4321"])


def test_replica_has_no_capabilities_and_no_new_privileges(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "cat /proc/self/status")
    fields = status_fields(log)
    assert status == OK
    assert fields["NoNewPrivs"] == "1"
    for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert fields[caps] == "0000000000000000", caps


def test_root_replica_is_bounded_too(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "cat /proc/self/status", user="root")
    fields = status_fields(log)
    assert status == OK
    assert fields["Uid"].split()[0] == "0"
    assert fields["CapEff"] == fields["CapBnd"] == "0000000000000000"


def test_setuid_binary_cannot_raise_privileges(tmp_path: Path, shared_dir: Path) -> None:
    assert not os.statvfs(shared_dir).f_flag & os.ST_NOSUID, "the test needs a suid filesystem"
    setuid_id = shared_dir / "id"
    shutil.copy("/usr/bin/id", setuid_id)
    setuid_id.chmod(0o4755)
    assert sh(tmp_path, f"{setuid_id} -u") == (OK, f"{NOBODY}\n")
    # the same binary does raise privileges without no_new_privs: the check above is real
    assert sh(tmp_path, f"{setuid_id} -u", no_new_privileges=False) == (OK, "0\n")


def test_read_only_path_cannot_be_written(tmp_path: Path, shared_dir: Path) -> None:
    shared_dir.chmod(0o777)
    status, log = sh(tmp_path, f"touch {shared_dir}/a", read_only_paths=[str(shared_dir)])
    assert status == ExitStatus(1, None)
    assert "Read-only file system" in log
    assert sh(tmp_path, f"touch {shared_dir}/b") == (OK, "")


def test_read_only_path_covers_its_submounts(tmp_path: Path) -> None:
    """/dev/shm is a separate mount below /dev; devices stay usable."""
    name = f"/dev/shm/constellation-test-{uuid.uuid4().hex[:8]}"
    try:
        status, log = sh(tmp_path, f"echo ok > /dev/null && touch {name}", read_only_paths=["/dev"])
        assert status == ExitStatus(1, None)
        assert "Read-only file system" in log
        assert not os.path.exists(name)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def test_private_tmp_is_empty_and_unseen_by_the_host(tmp_path: Path) -> None:
    marker = Path(f"/tmp/constellation-test-{uuid.uuid4().hex[:8]}")
    marker.touch()
    try:
        status, log = sh(tmp_path, f"ls -A /tmp; stat -c %a /tmp; touch {marker}.inside")
        assert (status, log) == (OK, "1777\n")
        assert not Path(f"{marker}.inside").exists()
    finally:
        marker.unlink()


def test_private_tmp_is_a_size_limited_tmpfs(tmp_path: Path) -> None:
    status, log = sh(tmp_path, "grep ' /tmp ' /proc/self/mountinfo")
    assert status == OK
    assert " - tmpfs " in log
    assert "size=65536k" in log


def test_network_none_has_only_loopback_and_it_is_up(tmp_path: Path) -> None:
    connect = (
        "import socket; s = socket.create_server(('127.0.0.1', 0)); "
        "socket.create_connection(s.getsockname()); print('connected')"
    )
    status, log = sh(
        tmp_path,
        f'tail -n +3 /proc/net/dev | cut -d: -f1; {PYTHON} -c "{connect}"',
        network="none",
    )
    assert (status, log.split()) == (OK, ["lo", "connected"])


BIND_80 = "import socket; socket.create_server(('127.0.0.1', 80)); print('bound')"


def test_listed_capability_lets_nobody_bind_port_80(tmp_path: Path) -> None:
    status, log = run(
        spec(
            tmp_path,
            "/bin/sh",
            "-c",
            f"grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status; id -u; {PYTHON} -c \"{BIND_80}\"",
            network="none",
            capabilities=["CAP_NET_BIND_SERVICE"],
        )
    )
    fields = status_fields(log)
    assert status == OK
    assert fields["CapEff"] == fields["CapBnd"] == fields["CapAmb"] == "0000000000000400"
    assert log.split()[-2:] == [str(NOBODY), "bound"]


def test_without_the_capability_binding_port_80_fails(tmp_path: Path) -> None:
    status, log = run(spec(tmp_path, PYTHON, "-c", BIND_80, network="none"))
    assert status == ExitStatus(1, None)
    assert "PermissionError" in log


def test_env_working_dir_and_argv_are_passed(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSTELLATION_TEST_HOST_ONLY", "leak")
    script = 'echo "$GREETING"; pwd; echo "$0 $1"; echo "${CONSTELLATION_TEST_HOST_ONLY:-unset}"'
    status, log = run(
        spec(
            tmp_path,
            "sh",
            "-c",
            script,
            "zero",
            "one",
            env={"GREETING": "hello world", "PATH": "/usr/bin:/bin"},
            working_dir=str(shared_dir),
        )
    )
    assert status == OK
    assert log.splitlines() == ["hello world", str(shared_dir), "zero one", "unset"]


def test_stdout_and_stderr_are_appended_to_the_log(tmp_path: Path) -> None:
    log_path = tmp_path / "replica.log"
    log_path.write_text("earlier run\n")
    status, _ = sh(tmp_path, "echo out; echo err >&2; read line || echo stdin-empty")
    assert status == OK
    assert log_path.read_text() == "earlier run\nout\nerr\nstdin-empty\n"


def test_log_is_created_with_mode_0640(tmp_path: Path) -> None:
    sh(tmp_path, "true")
    assert (tmp_path / "replica.log").stat().st_mode & 0o777 == 0o640


def test_only_stdio_is_inherited_and_signals_are_reset(tmp_path: Path) -> None:
    inheritable = os.open("/dev/null", os.O_RDONLY)
    os.set_inheritable(inheritable, True)
    # Python ignores SIGPIPE; the agent may block signals in its thread
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        status, log = run(spec(tmp_path, "/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"))
        fds_status, fds = sh(tmp_path, "ls /proc/self/fd")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(inheritable)
    assert status == OK
    assert status_fields(log) == {"SigBlk": "0000000000000000", "SigIgn": "0000000000000000"}
    assert (fds_status, fds.split()) == (OK, ["0", "1", "2", "3"])  # 3: ls's own directory


def test_exit_code_and_signal_are_observed(tmp_path: Path) -> None:
    assert sh(tmp_path, "exit 7")[0] == ExitStatus(7, None)
    with replica(spec(tmp_path, "/bin/sleep", "30")) as spawned:
        linux.pidfd_send_signal(spawned.pidfd, signal.SIGKILL)
        assert wait_exit(spawned.pidfd) == ExitStatus(None, signal.SIGKILL)


def test_spawned_reports_the_process(tmp_path: Path) -> None:
    before = time.time()
    with replica(spec(tmp_path, "/bin/sleep", "30")) as spawned:
        with open(f"/proc/{spawned.pid}/cmdline", "rb") as f:
            assert f.read() == b"/bin/sleep\x0030\x00"
        assert spawned.start_time == linux.start_time(spawned.pid)
        assert before <= spawned.started_at <= time.time()
        with open(f"/proc/{spawned.pid}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()  # our child


def assert_no_children_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)


def test_exec_failure_raises_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match=r'^exec "/bin/nope": No such file or directory$'):
        spawn(spec(tmp_path, "/bin/nope"))
    with pytest.raises(SpawnError, match=r'^exec "nope": No such file or directory$'):
        spawn(spec(tmp_path, "nope"))
    with pytest.raises(SpawnError, match=r'^exec "/etc/passwd": Permission denied$'):
        spawn(spec(tmp_path, "/etc/passwd"))
    assert_no_children_left()


def test_setup_failure_raises_with_the_step(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match=r'^chdir "/root": Permission denied$'):
        spawn(spec(tmp_path, "/bin/true", working_dir="/root"))
    with pytest.raises(SpawnError, match=r'^join cgroup "/nonexistent/cgroup.procs": No such'):
        spawn(spec(tmp_path, "/bin/true", cgroup_procs=["/nonexistent/cgroup.procs"]))
    assert_no_children_left()


def test_replica_joins_the_given_cgroups(tmp_path: Path, pids_cgroup: Path) -> None:
    procs = str(pids_cgroup / "cgroup.procs")
    relative = pids_cgroup.relative_to("/sys/fs/cgroup/pids")
    with replica(spec(tmp_path, "/bin/sleep", "30", cgroup_procs=[procs])) as spawned:
        assert Path(procs).read_text().split() == [str(spawned.pid)]
        with open(f"/proc/{spawned.pid}/cgroup") as f:
            assert f":pids:/{relative}\n" in f.read()


def test_cgroup_namespace_roots_the_replica_at_its_cgroups(
    tmp_path: Path, pids_cgroup: Path
) -> None:
    """Joined before unshare, so the replica sees its own cgroup as the root."""
    status, log = sh(
        tmp_path,
        "grep :pids: /proc/self/cgroup",
        namespaces=frozenset({"pid", "mount", "uts", "ipc", "cgroup"}),
        cgroup_procs=[str(pids_cgroup / "cgroup.procs")],
    )
    assert status == OK
    assert log.endswith(":pids:/\n")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"namespaces": frozenset({"pid", "uts"})}, "a pid namespace .* needs the mount"),
        ({"namespaces": frozenset({"uts"})}, "privateTmp needs the mount namespace"),
        (
            {"namespaces": frozenset({"uts"}), "private_tmp": False, "read_only_paths": ["/"]},
            "readOnlyPaths needs the mount namespace",
        ),
        ({"namespaces": frozenset({"pid", "mount", "time"})}, r"unknown namespaces \['time'\]"),
        ({"namespaces": frozenset({"net"})}, 'has "net" but network is "host"'),
        ({"read_only_paths": ["/nonexistent"]}, '"/nonexistent" is not an existing'),
        ({"working_dir": "relative"}, "not an absolute path"),
        ({"user": "no-such-user"}, 'unknown user "no-such-user"'),
        ({"user": "nobody:no-such-group"}, 'unknown group "no-such-group"'),
        ({"capabilities": ["CAP_FLY"]}, 'unknown capability "CAP_FLY"'),
        ({"hostname": "x" * 65}, "must be 1 to 64 bytes"),
        ({"env": {"A=B": "c"}}, 'env "A=B"'),
        ({"init": "/nonexistent/tini"}, "is not an executable file"),
        ({"log_path": "/nonexistent/replica.log"}, 'open log "/nonexistent/replica.log"'),
    ],
)
def test_invalid_spec_is_rejected_before_forking(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(SpawnError, match=message):
        spawn(spec(tmp_path, "/bin/true", **fields))
    assert_no_children_left()


def test_capabilities_may_omit_the_prefix(tmp_path: Path) -> None:
    status, log = run(
        spec(
            tmp_path,
            "/bin/grep",
            "^CapEff",
            "/proc/self/status",
            capabilities=["net_bind_service", "KILL"],
        )
    )
    assert (status, log) == (OK, "CapEff:\t0000000000000420\n")


def test_spawn_needs_a_subreaper(tmp_path: Path) -> None:
    linux.set_child_subreaper(False)
    try:
        with pytest.raises(SpawnError, match="not a child subreaper"):
            spawn(spec(tmp_path, "/bin/true"))
    finally:
        linux.set_child_subreaper()


def test_without_pid_namespace_the_host_pid_is_seen(tmp_path: Path) -> None:
    with replica(
        spec(
            tmp_path,
            "/bin/sh",
            "-c",
            "echo $$; exec sleep 30",
            namespaces=frozenset({"mount", "uts", "ipc"}),
        )
    ) as spawned:
        log = tmp_path / "replica.log"
        assert wait_until(lambda: log.read_text() == f"{spawned.pid}\n")


def test_workload_as_pid_1_ignores_sigterm_without_a_handler(tmp_path: Path) -> None:
    """What the kernel does to a namespace's init: why an init such as tini is worth having
    (and why the agent must follow SIGTERM with SIGKILL)."""
    with replica(spec(tmp_path, "/bin/sleep", "30")) as spawned:
        linux.pidfd_send_signal(spawned.pidfd, signal.SIGTERM)
        assert wait_exit(spawned.pidfd, timeout=0.5) is None


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def zombies_among_children(pid: int) -> list[str]:
    states = []
    for child in children(pid):
        with open(f"/proc/{child}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return [state for state in states if state == "Z"]


def command_lines(pids: list[int]) -> list[bytes]:
    """A zombie's is empty."""
    lines = []
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            lines.append(f.read())
    return lines


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


ORPHAN_THEN_SLEEP = 'sh -c "sleep 0.1 &"; exec sleep 30'


def test_without_init_orphans_stay_zombies(tmp_path: Path) -> None:
    with replica(spec(tmp_path, "/bin/sh", "-c", ORPHAN_THEN_SLEEP)) as spawned:
        assert wait_until(lambda: zombies_among_children(spawned.pid) == ["Z"])


@needs_tini
def test_tini_is_pid_1_and_reaps_orphans(tmp_path: Path) -> None:
    assert TINI is not None
    with replica(spec(tmp_path, "/bin/sh", "-c", ORPHAN_THEN_SLEEP, init=TINI)) as spawned:
        with open(f"/proc/{spawned.pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:3] == [TINI.encode(), b"-g", b"--"]
        # the orphan is re-parented to tini before the shell execs sleep 30: once sleep 30 is
        # tini's only child, the orphan has come, exited and been reaped
        assert wait_until(lambda: command_lines(children(spawned.pid)) == [b"sleep\x0030\x00"])


@needs_tini
def test_tini_forwards_sigterm_to_the_whole_process_group(tmp_path: Path) -> None:
    """A shell runs its trap only once its foreground sleep ends: here that happens at once,
    because the sleep got the signal too (-g); tini alone would signal the shell only."""
    script = 'trap "echo trapped" TERM; sleep 30; echo sleep ended'
    with replica(spec(tmp_path, "/bin/sh", "-c", script, init=TINI)) as spawned:
        assert wait_until(lambda: len(children(spawned.pid)) == 1)
        shell = children(spawned.pid)[0]
        assert wait_until(lambda: command_lines(children(shell)) == [b"sleep\x0030\x00"])
        linux.pidfd_send_signal(spawned.pidfd, signal.SIGTERM)
        assert wait_exit(spawned.pidfd, timeout=5) == OK
    # dash reports its job's death ("Terminated") before running the trap
    assert (tmp_path / "replica.log").read_text().splitlines()[-2:] == ["trapped", "sleep ended"]


@needs_tini
def test_init_missing_workload_fails_like_exec(tmp_path: Path) -> None:
    with pytest.raises(SpawnError, match=r'^exec "/bin/nope": No such file or directory$'):
        spawn(spec(tmp_path, "/bin/nope", init=TINI))


def test_default_spec_matches_the_documented_defaults() -> None:
    defaults = SpawnSpec(argv=["x"], env={}, hostname="h", log_path="/l")
    assert defaults.namespaces == {"pid", "mount", "uts", "ipc"}
    assert (defaults.network, defaults.user, defaults.private_tmp) == ("host", "nobody", True)
    assert defaults.no_new_privileges


def test_latency_script_runs() -> None:
    script = Path(__file__).with_name("spawn_latency.py")
    result = subprocess.run(
        [sys.executable, str(script), "--count", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"spawn", "unshare", "posix_spawn", "ratio_p50_spawn_to_unshare"}
    assert report["spawn"]["p50_ms"] > 0


SPAWN_WITH_32_IGNORED = """
import ctypes, os, sys
from constellation.runtime import linux
from constellation.runtime.spawn import SpawnSpec, spawn
# glibc's signal() refuses its reserved signal 32: ignore it the way a parent could, raw.
action = (ctypes.c_ulong * 4)(1, 0, 0, 0)
assert ctypes.CDLL(None).syscall(13, 32, ctypes.byref(action), None, 8) == 0
linux.set_child_subreaper()
spec = SpawnSpec(argv=["/bin/grep", "SigIgn", "/proc/self/status"], env={}, hostname="sig",
                 log_path=sys.argv[1], init=None)
os.waitid(os.P_PIDFD, spawn(spec).pidfd, os.WEXITED)
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="raw rt_sigaction number is x86_64's")
def test_signals_python_cannot_name_are_reset_too(tmp_path: Path) -> None:
    log = tmp_path / "sig.log"
    subprocess.run([sys.executable, "-c", SPAWN_WITH_32_IGNORED, str(log)], check=True)
    assert log.read_text().split() == ["SigIgn:", "0000000000000000"]
