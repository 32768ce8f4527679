"""A small process that forks replicas on the agent's behalf (one per agent, not per replica).

Forking copies the page tables of the process that forks, twice on the way to a replica's
pid 1, so a start costs more the bigger its parent: about 3 ms from a 16 MB process, 5-6 ms
from the 45-70 MB agent. The spawner is a fresh interpreter that imports only `spawn`; the
agent sends it each `SpawnSpec` over a socket pair and gets back the pid. It is the agent's
child and not a subreaper, so every replica's pid 1 is still re-parented to the agent, which
opens its pidfd, reaps it and sees its exit code exactly as if it had forked it itself.

It exits when the agent's end of the socket closes (the agent stopped or died), so it never
outlives the agent. `python -m constellation.runtime.spawner FD` is how the agent starts it.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import subprocess
import sys
import threading

from constellation.runtime import linux
from constellation.runtime.spawn import Spawned, SpawnError, SpawnSpec, spawn

_LENGTH = struct.Struct("!I")


class Spawner:
    """The agent's side: `spawn` has `runtime.spawn.spawn`'s contract. Requests are answered one
    at a time; a spawner that died is started again on the next request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None

    def spawn(self, spec: SpawnSpec) -> Spawned:
        if not linux.is_child_subreaper():
            raise SpawnError("the agent is not a child subreaper: replicas could not be reaped")
        with self._lock:
            channel = self._channel()
            try:
                _send(channel, spec)
                answer = _receive(channel)
            except (OSError, EOFError) as error:
                self._close()
                raise SpawnError(f"spawner: {error}") from None
        if isinstance(answer, str):
            raise SpawnError(answer)
        assert isinstance(answer, tuple)
        pid: int = answer[0]
        return Spawned(pid, linux.pidfd_open(pid), answer[1], answer[2])

    def close(self) -> None:
        with self._lock:
            self._close()

    def _channel(self) -> socket.socket:
        if self._socket is not None and self._process is not None and self._process.poll() is None:
            return self._socket
        self._close()
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "constellation.runtime.spawner", str(theirs.fileno())]
        self._process = subprocess.Popen(command, pass_fds=(theirs.fileno(),))
        theirs.close()
        self._socket = ours
        return ours

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()  # the spawner sees EOF and exits
            self._socket = None
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def _send(channel: socket.socket, message: object) -> None:
    data = pickle.dumps(message)
    channel.sendall(_LENGTH.pack(len(data)) + data)


def _receive(channel: socket.socket) -> object:
    (length,) = _LENGTH.unpack(_read(channel, _LENGTH.size))
    # Unpickling is safe here: both ends are this agent and its own child, on a socketpair.
    return pickle.loads(_read(channel, length))


def _read(channel: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = channel.recv(size - len(chunks))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks += chunk
    return bytes(chunks)


def serve(channel: socket.socket) -> None:
    """Answer spawn requests until the agent closes its end."""
    while True:
        try:
            spec = _receive(channel)
        except EOFError:
            return
        assert isinstance(spec, SpawnSpec)
        try:
            spawned = spawn(spec, reaper_is_parent=True)
        except SpawnError as error:
            _send(channel, str(error))
            continue
        os.close(spawned.pidfd)  # the agent opens its own: the process becomes its child
        _send(channel, (spawned.pid, spawned.start_time, spawned.started_at))


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
