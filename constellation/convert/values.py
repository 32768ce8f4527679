"""Other systems' spellings of names, durations, sizes and labels, in Constellation's terms.

Each function returns the converted value, or raises `ValueError` with a message the report
can show as the reason the field was dropped.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from constellation.apis.duration import seconds
from constellation.apis.instance import CAPABILITIES, STOP_SIGNALS, port_name
from constellation.apis.meta import label_value, qualified_key
from constellation.apis.quantity import MIB, cpu_millicores

_USER = re.compile(r"^([a-z_][a-z0-9_-]{0,31}|[0-9]+(:[0-9]+)?)$")
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOCKER_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)b?$", re.IGNORECASE)
_DOCKER_UNITS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_PROMETHEUS_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_PROMETHEUS_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


def mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping, else an empty one: other systems' files may hold anything."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dns_label(name: str) -> str:
    """A DNS label made from any name: `My_App.v2` -> `my-app-v2`."""
    label = _NOT_LABEL.sub("-", name.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)[:63].rstrip("-")
    return label or "unnamed"


def whole_seconds(value: Any) -> int:
    """A Go-style duration (`1m30s`, `500ms`) as whole seconds, rounded up."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):  # Compose reads a bare number as seconds
        return math.ceil(value)
    return math.ceil(seconds(value))


def go_duration(value: Any) -> str:
    """A Prometheus duration (`5m`, `1d`, `1h30m`) as a Go-style one (`5m`, `24h`, `1h30m`)."""
    text = str(value).strip()
    if not text or _PROMETHEUS_DURATION.sub("", text):
        raise ValueError(f'invalid duration "{text}"')
    total = sum(int(n) * _PROMETHEUS_UNITS[u] for n, u in _PROMETHEUS_DURATION.findall(text))
    if total != int(total):
        return f"{round(total * 1000)}ms"
    hours, rest = divmod(int(total), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def docker_memory(value: Any) -> str:
    """Docker's byte sizes (`512m`, `1gb`, `1.5G`, 1048576): k, m, g are powers of 1024."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    match = _DOCKER_SIZE.match(str(value).strip())
    if match is None:
        raise ValueError(f'invalid size "{value}": use a number with b, k, m or g')
    amount = math.ceil(float(match[1]) * 1024 ** _DOCKER_UNITS[match[2].lower()])
    if amount < MIB:
        raise ValueError(f'"{value}" is less than the 1Mi a replica needs at least')
    return f"{amount // MIB}Mi" if amount % MIB == 0 else str(amount)


def cpus(value: Any) -> str:
    """Docker's fractional cpus (`0.5`, "1.5") as a cpu quantity (`500m`)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of cpus")
    millis = math.ceil(float(value) * 1000)
    if millis < 1:
        raise ValueError(f'"{value}" cpus is less than 1m')
    cpu_millicores(f"{millis}m")
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def words(value: Any) -> list[str]:
    """A command as a list: Compose splits the string form as a shell would, without one."""
    if isinstance(value, list):
        return [_text(item) for item in value]
    if isinstance(value, str):
        return shlex.split(value)
    raise ValueError(f"expected a string or a list, not {type(value).__name__}")


def user(value: Any) -> str:
    """A user name, uid or uid:gid, as Instance.spec.user takes it (no name:group)."""
    text = _text(value)
    if not _USER.match(text):
        raise ValueError(f'user "{text}" is not a user name, a uid or uid:gid')
    return text


def env_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise ValueError(
            f'"{name}" is not a valid environment variable name (letters, digits and _)'
        )
    return name


def text(value: Any) -> str:
    return _text(value)


def _text(value: Any) -> str:
    """Scalars as YAML wrote them: true, 3, 1.5 (Compose and Kubernetes accept them in lists
    of strings)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise ValueError(
            f"expected a scalar, not a {'mapping' if isinstance(value, dict) else 'list'}"
        )
    return str(value)


def is_label(key: str, value: str) -> bool:
    try:
        qualified_key(key)
        label_value(value)
    except ValueError:
        return False
    return True


def is_annotation_key(key: str) -> bool:
    try:
        qualified_key(key)
    except ValueError:
        return False
    return True


def capability(name: str) -> str:
    """`NET_ADMIN` or `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`."""
    full = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
    if full not in CAPABILITIES:
        raise ValueError(f'unknown capability "{name}"')
    return full


def stop_signal(name: Any) -> str:
    full = str(name).upper()
    full = full if full.startswith("SIG") else f"SIG{full}"
    if full not in STOP_SIGNALS:
        raise ValueError(f'signal "{name}" is not one Constellation can stop with')
    return full


def port_label(protocol: str, port: int, name: Any = None) -> str:
    """The port's own name when it is a valid port name, else `tcp-80`."""
    if isinstance(name, str):
        try:
            return port_name(name)
        except ValueError:
            pass
    return f"{protocol.lower()}-{port}"


def port_number(value: Any) -> int:
    digits = isinstance(value, str) and value.isdigit()
    number = int(value) if digits or (isinstance(value, int) and not isinstance(value, bool)) else 0
    if not 1 <= number <= 65535:
        raise ValueError(f'"{value}" is not a port number (1-65535)')
    return number
