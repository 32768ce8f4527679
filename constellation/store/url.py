"""Store URLs: how users name a backend (`sqlite:///path/state.db`, `etcd://h1:2379,h2:2379`).

Parsing is separate from opening so that a typo is reported before anything touches disk or
network, with a message that says what a valid URL looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote

from constellation.store.errors import InvalidStoreURL

SQLITE_OPTIONS = frozenset({"retain", "synchronous"})
ETCD_OPTIONS = frozenset({"cacert", "cert", "key", "timeout"})


@dataclass(frozen=True)
class SqliteURL:
    path: Path
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EtcdURL:
    endpoints: tuple[tuple[str, int], ...]
    user: str | None = None
    password: str | None = None
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    timeout: float = 5.0


StoreURL = SqliteURL | EtcdURL


def default_url(data_dir: Path) -> str:
    return f"sqlite://{data_dir.absolute() / 'state.db'}"


def parse_store_url(url: str) -> StoreURL:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidStoreURL(
            f"invalid store URL {url!r}: expected sqlite:///PATH or etcd://HOST:PORT"
        )
    location, _, query = rest.partition("?")
    options = _parse_query(url, query)
    if scheme == "sqlite":
        return _sqlite_url(url, location, options)
    if scheme == "etcd":
        return _etcd_url(url, location, options)
    raise InvalidStoreURL(
        f"invalid store URL {url!r}: unknown scheme {scheme!r} (use sqlite or etcd)"
    )


def _parse_query(url: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if len(values) != 1 or not values[0]:
            raise InvalidStoreURL(f"invalid store URL {url!r}: option {name!r} needs one value")
        options[name] = values[0]
    return options


def _check_options(url: str, options: dict[str, str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidStoreURL(
            f"invalid store URL {url!r}: unknown option {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _sqlite_url(url: str, location: str, options: dict[str, str]) -> SqliteURL:
    _check_options(url, options, SQLITE_OPTIONS)
    if not location:
        raise InvalidStoreURL(f"invalid store URL {url!r}: no database path (sqlite:///PATH)")
    if "retain" in options and not options["retain"].isdigit():
        raise InvalidStoreURL(f"invalid store URL {url!r}: retain must be a whole number")
    if options.get("synchronous", "normal").lower() not in {"off", "normal", "full"}:
        raise InvalidStoreURL(f"invalid store URL {url!r}: synchronous must be off, normal or full")
    return SqliteURL(path=Path(unquote(location)), options=options)


def _etcd_url(url: str, location: str, options: dict[str, str]) -> EtcdURL:
    _check_options(url, options, ETCD_OPTIONS)
    userinfo, _, hosts = location.rpartition("@")
    user, _, password = userinfo.partition(":")
    if userinfo and not (user and password):
        raise InvalidStoreURL(f"invalid store URL {url!r}: credentials must be USER:PASSWORD@")
    endpoints = tuple(_endpoint(url, part) for part in hosts.split(","))
    if bool(options.get("cert")) != bool(options.get("key")):
        raise InvalidStoreURL(f"invalid store URL {url!r}: cert and key go together")
    if "cert" in options and "cacert" not in options:
        raise InvalidStoreURL(f"invalid store URL {url!r}: a client cert needs cacert too")
    try:
        timeout = float(options.get("timeout", "5"))
    except ValueError:
        raise InvalidStoreURL(f"invalid store URL {url!r}: timeout must be seconds") from None
    return EtcdURL(
        endpoints=endpoints,
        user=unquote(user) or None,
        password=unquote(password) or None,
        cacert=_path(options.get("cacert")),
        cert=_path(options.get("cert")),
        key=_path(options.get("key")),
        timeout=timeout,
    )


def _endpoint(url: str, part: str) -> tuple[str, int]:
    host, sep, port = part.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidStoreURL(f"invalid store URL {url!r}: endpoint {part!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
