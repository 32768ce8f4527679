"""Real etcd processes for tests: one server or a small cluster on free loopback ports.

Tests of the etcd backend must run against the real server (kill -9, restart, TLS, auth), so
this helper owns the process lifecycle: it starts etcd on its own ports and data dir, waits until
the server answers /health, and kills only the process it started, by PID.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ETCD = os.environ.get("CONSTELLATION_ETCD", "etcd")
ETCDCTL = os.environ.get("CONSTELLATION_ETCDCTL", "etcdctl")
HOST = "127.0.0.1"
# A port free when picked may be taken before etcd binds it (by another test's server, or as
# the local port of an outgoing connection): a first start on picked ports picks again.
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """etcd could not bind its port: someone else has it."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a test PKI: a CA, a server cert for 127.0.0.1/localhost, a client cert."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


class EtcdServer:
    """One etcd member. `EtcdServer(tmp_path).start()`, then `.url`; `.stop()` when done.

    `kill()` and `restart()` keep the data dir and ports, so a restarted server has the same
    history and clients reconnect to the same address.
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        name: str = "etcd0",
        tls: TLSFiles | None = None,
        extra_args: tuple[str, ...] = (),
        client_port: int | None = None,
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        cluster_token: str | None = None,
    ) -> None:
        self.name = name
        self.tls = tls
        self.extra_args = extra_args
        # Only ports, cluster and token all picked here may move (see `start`).
        self._may_move = not (client_port or peer_port or initial_cluster or cluster_token)
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.cluster_token = cluster_token or f"constellation-test-{self.client_port}"
        self.data_dir = tmp_path / f"{name}.data"
        self.log_path = tmp_path / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    @property
    def url(self) -> str:
        """The store URL (TLS options included when the server uses TLS with client certs)."""
        base = f"etcd://{self.endpoint}"
        if self.tls is None:
            return base
        return f"{base}?cacert={self.tls.ca}&cert={self.tls.client_cert}&key={self.tls.client_key}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        args = [
            ETCD,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={self.cluster_token}",
            # The test machine is small and shared: no metrics server, quiet logs.
            "--log-level=warn",
            "--logger=zap",
        ]
        if self.tls is not None:
            args += [
                f"--cert-file={self.tls.server_cert}",
                f"--key-file={self.tls.server_key}",
                f"--trusted-ca-file={self.tls.ca}",
                "--client-cert-auth",
            ]
        return args + list(self.extra_args)

    def spawn(self) -> None:
        """Start the process without waiting (a cluster starts all members, then waits)."""
        if self.running:
            raise RuntimeError(f"etcd {self.name} is already running (pid {self.pid})")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

    def start(self, timeout: float = 20.0) -> EtcdServer:
        """Start and wait until healthy. The first start on ports picked here picks new ones
        if they were taken meanwhile; later starts (restarts) keep their ports."""
        attempts = PORT_ATTEMPTS if self._may_move else 1
        while True:
            attempts -= 1
            try:
                self._start_here(timeout)
            except PortTaken:
                if attempts == 0:
                    raise
                self._move_to_free_ports()
                continue
            self._may_move = False
            return self

    def _start_here(self, timeout: float) -> None:
        self.spawn()
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.kill()
            raise

    def _move_to_free_ports(self) -> None:
        """New ports, and the files of the start that failed removed (they are ours)."""
        self.client_port, self.peer_port = free_port(), free_port()
        self.initial_cluster = f"{self.name}={self.peer_url}"
        self.cluster_token = f"constellation-test-{self.client_port}"
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                tail = self.log_tail()
                failed = PortTaken if "address already in use" in tail else RuntimeError
                raise failed(f"etcd {self.name} exited at start-up:\n{tail}")
            if self.healthy():
                return
            time.sleep(0.02)
        raise TimeoutError(f"etcd {self.name} not healthy after {timeout}s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.client_url}/health", timeout=0.5, context=self._ssl_context()
            ) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return context

    def kill(self) -> None:
        """SIGKILL the process (no clean shutdown) and reap it."""
        self._signal(signal.SIGKILL, timeout=10.0)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self._proc is None:
            return
        try:
            self._signal(signal.SIGTERM, timeout=5.0)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: int, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
        proc.wait(timeout=timeout)
        self._proc = None

    def restart(self, timeout: float = 20.0) -> None:
        """Start again on the same data dir and ports (after `kill` or `stop`)."""
        self.kill()
        self.start(timeout)

    def etcdctl(self, *args: str, user: str | None = None) -> str:
        """Run etcdctl against this member; returns stdout, raises on failure."""
        cmd = [ETCDCTL, f"--endpoints={self.client_url}", "--command-timeout=5s"]
        if self.tls is not None:
            cmd += [
                f"--cacert={self.tls.ca}",
                f"--cert={self.tls.client_cert}",
                f"--key={self.tls.client_key}",
            ]
        if user is not None:
            cmd.append(f"--user={user}")
        env = {**os.environ, "ETCDCTL_API": "3"}
        result = subprocess.run(
            [*cmd, *args], env=env, capture_output=True, text=True, timeout=15, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EtcdServer:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EtcdCluster:
    """Members on loopback that form one cluster; `url` lists every client endpoint."""

    def __init__(self, tmp_path: Path, size: int = 3) -> None:
        names = [f"etcd{i}" for i in range(size)]
        peers = {name: free_port() for name in names}
        initial = ",".join(f"{name}=http://{HOST}:{port}" for name, port in peers.items())
        self.members = [
            EtcdServer(
                tmp_path,
                name=name,
                peer_port=peers[name],
                initial_cluster=initial,
                cluster_token=f"constellation-test-{peers[names[0]]}",
            )
            for name in names
        ]

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(member.endpoint for member in self.members)

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        try:
            # Members wait for each other (quorum) before they are healthy: spawn all first.
            for member in self.members:
                member.spawn()
            for member in self.members:
                member.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def member_at(self, endpoint: str) -> EtcdServer:
        return next(member for member in self.members if member.endpoint == endpoint)

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_tls_files(directory: Path) -> TLSFiles:
    """A throwaway CA, a server cert valid for 127.0.0.1 and localhost, and a client cert."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)

    def builder(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("constellation test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        builder("constellation test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        subject: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = builder(subject, key).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        cert = cert.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if sans:
            cert = cert.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return cert.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf(
        "etcd",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))],
    )
    client_cert, client_key = leaf("constellation", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    files = TLSFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca_cert.public_bytes(pem))
    files.server_cert.write_bytes(server_cert.public_bytes(pem))
    files.client_cert.write_bytes(client_cert.public_bytes(pem))
    write_key(files.server_key, server_key)
    write_key(files.client_key, client_key)
    return files
