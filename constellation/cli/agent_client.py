"""Reaching a node's agent over HTTP, at the `status.agentEndpoint` its Node advertises: where
`logs` and `top` read what lives on the node rather than in the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from constellation.cli.errors import CommandError

if TYPE_CHECKING:
    from constellation.apis.node import Node

CHUNK = 65536


def agent_url(node: Node, path: str) -> str:
    endpoint = node.status.agentEndpoint
    if not endpoint:
        raise CommandError(f"node {node.metadata.name} advertises no agent endpoint")
    return f"http://{endpoint}{path}"


def stream(node: Node, path: str, timeout: float | None = 10.0) -> Iterator[bytes]:
    """The response body in chunks as they arrive; a one-line error when the agent can't say."""
    # Imported here: urllib brings ssl and email, which every other command (and the agent,
    # started through this CLI) would load for nothing.
    import urllib.error
    import urllib.request

    url = agent_url(node, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read1(CHUNK):
                yield chunk
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise CommandError(f"node {node.metadata.name}: {detail or exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(
            f"cannot reach the agent of node {node.metadata.name} at {url}: {reason}"
        ) from None


def fetch_json(node: Node, path: str, timeout: float = 10.0) -> Any:
    return json.loads(b"".join(stream(node, path, timeout)))
