"""The etcd backend: the Store protocol on a real etcd v3 cluster, through python3-etcd3.

The Store contract is etcd's own data model, so this module is mostly translation. It exists as
more than a thin wrapper because python3-etcd3 0.13 has gaps that would lose work or hang (see
DESIGN.md, "Library notes"): its watch thread dies silently on a server loss, a failed endpoint
is shunned for five minutes, its errors are library types with no detail, and call credentials
break plaintext auth. We keep the library for what it does well (channels, endpoint failover,
the multiplexed watch stream) and build the requests ourselves, so that every write is one
transaction and every failure is a one-line StoreError naming the endpoint.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import etcd3.events
import etcd3.exceptions
import etcd3.watch
import grpc
from etcd3 import etcdrpc
from etcd3.client import Endpoint, MultiEndpointEtcd3Client

from constellation.store.errors import (
    AlreadyExists,
    Compacted,
    Conflict,
    LeaseNotFound,
    NotFound,
    StoreError,
    StoreOpenError,
    Unavailable,
)
from constellation.store.types import Event, EventType, Record, Watch
from constellation.store.url import EtcdURL

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    # grpc's default reconnect backoff grows to 120 s; a control plane should be back within
    # about a second of etcd coming back.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Without pings a watch on a peer that vanished without a RST would wait forever. etcd
    # refuses pings more often than every 5 s (--grpc-keepalive-min-time).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# The library shuns a failed endpoint for 300 s by default, which with one endpoint means five
# minutes of NoServerAvailableError after etcd restarts.
_SHUN_FAILED_ENDPOINT_S = 1.0
_TLS_HINTS = ("tsi_", "ssl", "handshake", "certificate")


def _patch_watch_module() -> None:
    """python3-etcd3 0.13 etcd3/watch.py:156 (`Watcher._run`) calls `six.itervalues(callbacks)`
    without importing six; when the stream breaks, that NameError kills the watch thread before
    any callback hears of it. Supply the one function it uses instead of depending on six."""
    if not hasattr(etcd3.watch, "six"):
        etcd3.watch.six = types.SimpleNamespace(itervalues=lambda d: iter(list(d.values())))


_patch_watch_module()


class _FutureRevision(StoreError):
    """A read at a revision etcd has not reached yet."""


class _TokenExpired(StoreError):
    """etcd no longer knows our auth token."""


class EtcdStore:
    """The Store protocol on etcd v3. Thread-safe; one gRPC channel per endpoint.

    After `close` every call raises the same StoreError as a closed SQLite store. grpc refuses
    a call on a closed channel with a bare ValueError (and the library's watch thread dies of
    it), so every use of the channels is counted (`_channel_use`) and `close` closes them only
    once the count is zero, after which nothing can start a new one. Calls carry a deadline,
    so close waits at most the URL's timeout; a watch stream that is already open is not a
    use, and closing the channel ends it.
    """

    def __init__(self, client: Any, url: EtcdURL) -> None:
        self._client = client
        self._url = url
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        self._closed = False
        self._uses = 0
        self._unused = threading.Condition(self._lock)

    @classmethod
    def open(cls, url: EtcdURL) -> EtcdStore:
        """Connect and prove it with one read. Raises `Unavailable` or `StoreOpenError`."""
        client = MultiEndpointEtcd3Client(
            endpoints=_endpoints(url), timeout=url.timeout, failover=True
        )
        store = cls(client, url)
        try:
            if url.user is not None:
                store._authenticate()
            store.current_revision()
        except Unavailable as exc:
            store.close()
            raise _open_failure(url, exc) from None
        except StoreError as exc:
            store.close()
            raise StoreOpenError(f"cannot open {exc}") from None
        return store

    @property
    def endpoint(self) -> str:
        """The HOST:PORT requests currently go to."""
        return str(self._client.endpoint_in_use.netloc)

    # Reads

    def get(self, key: str) -> Record | None:
        response = self._call("kvstub", "Range", etcdrpc.RangeRequest(key=_enc(key)), True)
        return _record(response.kvs[0]) if response.kvs else None

    def list(self, prefix: str, revision: int = 0, limit: int = 0) -> tuple[list[Record], int]:
        start, end = _prefix_range(prefix)
        # etcd returns ranges in key order unless asked to sort otherwise.
        request = etcdrpc.RangeRequest(key=start, range_end=end, revision=revision, limit=limit)
        try:
            response = self._call("kvstub", "Range", request, True)
        except Compacted:
            raise Compacted(revision) from None
        # With an explicit revision the header still carries the newest one, not the one read.
        return [_record(kv) for kv in response.kvs], revision or int(response.header.revision)

    def current_revision(self) -> int:
        request = etcdrpc.RangeRequest(key=b"\0", keys_only=True, limit=1)
        return int(self._call("kvstub", "Range", request, True).header.revision)

    # Writes: each is one transaction whose failure branch reads the key, so a failed
    # compare-and-swap tells NotFound from Conflict without a second round trip.

    def create(self, key: str, value: bytes, lease: int | None = None) -> Record:
        raw = _enc(key)
        put = etcdrpc.PutRequest(key=raw, value=value, lease=lease or 0)
        try:
            response = self._txn([_compare(raw, "create", 0)], [_op(request_put=put)], [])
        except LeaseNotFound:
            raise LeaseNotFound(f"lease {lease} not found or expired") from None
        if not response.succeeded:
            raise AlreadyExists(f"key {key!r} already exists")
        revision = int(response.header.revision)
        return Record(key, value, revision, revision, 1, lease or 0)

    def update(self, key: str, value: bytes, expected_mod_revision: int) -> Record:
        raw = _enc(key)
        # ignore_lease keeps whatever lease the key has at commit time, without reading it first.
        put = etcdrpc.PutRequest(key=raw, value=value, ignore_lease=True, prev_kv=True)
        compares = [_compare(raw, "mod", expected_mod_revision), _exists(raw)]
        response = self._txn(compares, [_op(request_put=put)], [_read_op(raw)])
        if not response.succeeded:
            raise _cas_failure(key, response, expected_mod_revision)
        prev = response.responses[0].response_put.prev_kv
        revision = int(response.header.revision)
        return Record(key, value, prev.create_revision, revision, prev.version + 1, prev.lease)

    def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        raw = _enc(key)
        compares = [_exists(raw)]
        if expected_mod_revision is not None:
            compares.append(_compare(raw, "mod", expected_mod_revision))
        delete = etcdrpc.DeleteRangeRequest(key=raw)
        response = self._txn(compares, [_op(request_delete_range=delete)], [_read_op(raw)])
        if not response.succeeded:
            raise _cas_failure(key, response, expected_mod_revision)
        return int(response.header.revision)

    def compact(self, revision: int) -> None:
        # physical: return only once the old revisions are gone, so reads below fail at once.
        request = etcdrpc.CompactionRequest(revision=revision, physical=True)
        try:
            self._call("kvstub", "Compact", request)
        except Compacted:
            raise Compacted(revision) from None

    def _txn(self, compare: Sequence[Any], success: Sequence[Any], failure: Sequence[Any]) -> Any:
        request = etcdrpc.TxnRequest(compare=compare, success=success, failure=failure)
        return self._call("kvstub", "Txn", request)

    # Watches

    def watch(self, prefix: str, start_revision: int = 0) -> Watch:
        if start_revision > 0:
            self._check_history(prefix, start_revision)
        start, end = _prefix_range(prefix)
        feed = _Feed(start_revision, self.endpoint)
        watch = Watch(on_close=functools.partial(self._forget, feed))
        feed.watch = watch
        # A use until the watch is registered: the library opens the stream on its own thread.
        with self._channel_use():
            feed.watcher = self._rpc(lambda: self._client.watcher)
            try:
                feed.watch_id = feed.watcher.add_callback(
                    start, feed, range_end=end, start_revision=start_revision or None, prev_kv=True
                )
            except grpc.RpcError as exc:
                raise self._translate(exc) from None
            except etcd3.exceptions.WatchTimedOut:
                where = self.endpoint
                raise Unavailable(f"etcd at {where} did not confirm a watch in time") from None
            except etcd3.exceptions.RevisionCompactedError as exc:
                raise Compacted(start_revision, exc.compacted_revision) from None
            # Still a use: a `close` begun meanwhile waits, then sees this watch and ends it.
            with self._lock:
                self._watches.add(watch)
        return watch

    def _check_history(self, prefix: str, revision: int) -> None:
        """Raise `Compacted` now: etcd itself reports it only later, on the watch stream."""
        start, end = _prefix_range(prefix)
        request = etcdrpc.RangeRequest(
            key=start, range_end=end, revision=revision, limit=1, keys_only=True
        )
        try:
            self._call("kvstub", "Range", request, True)
        except Compacted:
            raise Compacted(revision) from None
        except _FutureRevision:
            pass  # watching from a revision not yet written is fine

    def _forget(self, feed: _Feed) -> None:
        broken, feed.ended = feed.ended, True
        with self._lock:
            self._watches.discard(feed.watch)
        # A broken stream has no server-side watch left, and Watcher.cancel could block on the
        # dead stream's bounded request queue while holding the lock its thread needs.
        if broken or feed.watcher is None or feed.watch_id is None:
            return
        # Cancel on the watcher the watch lives on: after a failover the client has a new one.
        feed.watcher.cancel(feed.watch_id)

    # Leases

    def grant_lease(self, ttl: int) -> int:
        return int(self._call("leasestub", "LeaseGrant", etcdrpc.LeaseGrantRequest(TTL=ttl)).ID)

    def keepalive(self, lease: int) -> int:
        ttl = self._rpc(functools.partial(self._keepalive_once, lease), idempotent=True)
        # etcd answers an unknown or expired lease with TTL 0 rather than an error.
        if ttl <= 0:
            raise LeaseNotFound(f"lease {lease} not found or expired")
        return ttl

    def _keepalive_once(self, lease: int) -> int:
        request = etcdrpc.LeaseKeepAliveRequest(ID=lease)
        with self._channel_use():
            stub = self._client.leasestub
            call = stub.LeaseKeepAlive(iter([request]), self._url.timeout, metadata=self._metadata)
            try:
                for response in call:
                    return int(response.TTL)
                return 0
            finally:
                call.cancel()

    def revoke(self, lease: int) -> None:
        try:
            self._call("leasestub", "LeaseRevoke", etcdrpc.LeaseRevokeRequest(ID=lease))
        except LeaseNotFound:
            raise LeaseNotFound(f"lease {lease} not found or expired") from None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._uses:
                self._unused.wait()
            watches = list(self._watches)
        for watch in watches:
            watch.close()
        self._client.close()

    # RPC plumbing

    @contextlib.contextmanager
    def _channel_use(self) -> Iterator[None]:
        """Count a use of the client and its channels; raise the closed error after `close`."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            self._uses += 1
        try:
            yield
        finally:
            with self._lock:
                self._uses -= 1
                if not self._uses:
                    self._unused.notify_all()

    def _closed_error(self) -> StoreError:
        where = ",".join(f"{host}:{port}" for host, port in self._url.endpoints)
        return StoreError(f"etcd store {where} is closed")

    @property
    def _metadata(self) -> Any:
        return self._client.metadata

    def _call(self, stub: str, method: str, request: Any, idempotent: bool = False) -> Any:
        def send() -> Any:
            with self._channel_use():
                rpc = getattr(getattr(self._client, stub), method)
                return rpc(request, self._url.timeout, metadata=self._metadata)

        return self._rpc(send, idempotent=idempotent)

    def _rpc(self, send: Callable[[], T], *, idempotent: bool = False) -> T:
        """Run `send`, mapping errors to StoreError. Reads may try each endpoint once; writes
        never retry, since a write that timed out may have been applied."""
        attempts = len(self._url.endpoints) if idempotent else 1
        while True:
            attempts -= 1
            try:
                return self._send_authenticated(send)
            except Unavailable:
                if attempts <= 0:
                    raise

    def _send_authenticated(self, send: Callable[[], T]) -> T:
        try:
            return self._send(send)
        except _TokenExpired:
            if self._url.user is None:
                raise
            # etcd's simple tokens expire after 5 idle minutes; the request was not applied.
            self._authenticate()
            return self._send(send)

    def _send(self, send: Callable[[], T]) -> T:
        try:
            return send()
        except grpc.RpcError as exc:
            raise self._translate(exc) from None
        except etcd3.exceptions.NoServerAvailableError:
            where = ", ".join(f"{host}:{port}" for host, port in self._url.endpoints)
            raise Unavailable(f"cannot reach etcd at {where}: every endpoint just failed") from None

    def _authenticate(self) -> None:
        request = etcdrpc.AuthenticateRequest(name=self._url.user, password=self._url.password)

        def send() -> Any:
            with self._channel_use():
                return self._client.authstub.Authenticate(request, self._url.timeout)

        attempts = len(self._url.endpoints)
        while True:
            attempts -= 1
            try:
                token = self._send(send).token
                break
            except Unavailable:
                if attempts <= 0:
                    raise
        with self._channel_use():
            # The token travels as metadata. The library also sets call credentials, which grpc
            # refuses on a plaintext channel; metadata alone is what etcd reads, so drop them.
            self._client.metadata = (("token", token),)
            self._client.call_credentials = None
            # Watch streams take the token when the watcher is made: new watches get a new one.
            self._client.watcher = self._client.get_watcher()

    def _translate(self, exc: grpc.RpcError) -> StoreError:
        code = exc.code()
        details = _one_line(exc.details() or code.name)
        where = self.endpoint
        if code in _UNREACHABLE:
            self._fail_endpoint()
            return Unavailable(f"cannot reach etcd at {where}: {details}")
        if code == grpc.StatusCode.UNAUTHENTICATED and "invalid auth token" in details:
            return _TokenExpired(details)
        if "required revision has been compacted" in details:
            return Compacted(0)
        if "required revision is a future revision" in details:
            return _FutureRevision(f"etcd at {where}: {details}")
        if "requested lease not found" in details:
            return LeaseNotFound(details)
        return StoreError(f"etcd at {where}: {details}")

    def _fail_endpoint(self) -> None:
        """Send the next request to another endpoint (the library's own failover step)."""
        if len(self._url.endpoints) < 2:
            return  # one endpoint: let grpc reconnect to it
        self._client.endpoint_in_use.fail()
        # Cached stubs are bound to the failed channel; the library clears them the same way
        # in MultiEndpointEtcd3Client._manage_grpc_errors.
        self._client._clear_old_stubs()


class _Feed:
    """Turns python3-etcd3 watch callbacks (its thread) into `Watch.push`/`Watch.fail`."""

    def __init__(self, start_revision: int, endpoint: str) -> None:
        self.watch: Watch | None = None
        self.watcher: Any = None
        self.watch_id: int | None = None
        self.next_revision = start_revision
        self.endpoint = endpoint
        self.ended = False

    def __call__(self, response: object) -> None:
        watch = self.watch
        if self.ended or watch is None or watch.closed:
            return
        if isinstance(response, etcd3.watch.WatchResponse):
            for raw in response.events:
                event = _event(raw)
                watch.push(event)
                self.next_revision = event.revision + 1
            return
        self.ended = True
        watch.fail(self._error(response))

    def _error(self, response: object) -> StoreError:
        if isinstance(response, etcd3.exceptions.RevisionCompactedError):
            return Compacted(self.next_revision, response.compacted_revision)
        if isinstance(response, grpc.RpcError):
            reason = _one_line(response.details() or response.code().name)
        else:
            reason = "stream closed"  # the library reports a clean end of stream as None
        return Unavailable(f"etcd watch on {self.endpoint} broke: {reason}")


def _open_failure(url: EtcdURL, exc: Unavailable) -> StoreError:
    """Name the likely cause of a failed first contact: grpc reports TLS mismatches only as
    broken connections."""
    text = str(exc).lower()
    if url.cacert is not None and any(hint in text for hint in _TLS_HINTS):
        return StoreOpenError(f"TLS handshake failed ({exc}); check cacert, cert and key")
    if url.cacert is None and "socket closed" in text:
        return Unavailable(f"{exc} (if etcd serves TLS, add ?cacert=...)")
    return exc


def _endpoints(url: EtcdURL) -> list[Any]:
    creds = _tls_credentials(url)
    shun = _SHUN_FAILED_ENDPOINT_S if len(url.endpoints) > 1 else 0.0
    return [
        Endpoint(
            f"[{host}]" if ":" in host else host,
            port,
            secure=creds is not None,
            creds=creds,
            time_retry=shun,
            opts=_CHANNEL_OPTIONS,
        )
        for host, port in url.endpoints
    ]


def _tls_credentials(url: EtcdURL) -> Any:
    if url.cacert is None:
        return None
    try:
        return MultiEndpointEtcd3Client.get_secure_creds(
            str(url.cacert),
            str(url.key) if url.key else None,
            str(url.cert) if url.cert else None,
        )
    except OSError as exc:
        raise StoreOpenError(f"cannot read etcd TLS file {exc.filename}: {exc.strerror}") from None


def _enc(key: str) -> bytes:
    return key.encode("utf-8")


def _prefix_range(prefix: str) -> tuple[bytes, bytes]:
    """etcd's [key, range_end) for every key starting with `prefix`; b"\\0" means no end."""
    start = _enc(prefix)
    stripped = start.rstrip(b"\xff")
    if not stripped:
        return start or b"\0", b"\0"
    return start, stripped[:-1] + bytes([stripped[-1] + 1])


def _compare(key: bytes, target: str, value: int) -> Any:
    field = f"{target}_revision"
    target_enum = etcdrpc.Compare.CREATE if target == "create" else etcdrpc.Compare.MOD
    compare = etcdrpc.Compare(key=key, target=target_enum, result=etcdrpc.Compare.EQUAL)
    setattr(compare, field, value)
    return compare


def _exists(key: bytes) -> Any:
    compare = _compare(key, "create", 0)
    compare.result = etcdrpc.Compare.GREATER
    return compare


def _op(**request: Any) -> Any:
    return etcdrpc.RequestOp(**request)


def _read_op(key: bytes) -> Any:
    return _op(request_range=etcdrpc.RangeRequest(key=key))


def _cas_failure(key: str, response: Any, expected: int | None) -> StoreError:
    kvs = response.responses[0].response_range.kvs
    if not kvs:
        return NotFound(f"key {key!r} not found")
    found = kvs[0].mod_revision
    return Conflict(f"key {key!r} changed: expected mod_revision {expected}, found {found}")


def _record(kv: Any) -> Record:
    return Record(
        key=kv.key.decode("utf-8"),
        value=bytes(kv.value),
        create_revision=int(kv.create_revision),
        mod_revision=int(kv.mod_revision),
        version=int(kv.version),
        lease=int(kv.lease),
    )


def _event(raw: Any) -> Event:
    kind = EventType.DELETE if isinstance(raw, etcd3.events.DeleteEvent) else EventType.PUT
    record = Record(
        key=raw.key.decode("utf-8"),
        value=bytes(raw.value),
        create_revision=int(raw.create_revision),
        mod_revision=int(raw.mod_revision),
        version=int(raw.version),
        lease=int(raw.lease),
    )
    # prev_kv is absent on a create; a present one always has version >= 1.
    prev_value = bytes(raw.prev_value) if raw.prev_version else None
    return Event(kind, record, prev_value)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
