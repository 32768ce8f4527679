"""Three-way merge for `apply`: last applied, live and the new manifest.

Why not a JSON merge patch of last-applied against new: a field removed from the manifest
must remove exactly what the manifest had set there, never what others added beside it. Take
a label map where the user dropped one label and a controller added another: only the user's
label goes. Lists of objects that all carry a `name` (ports, env, schedules) merge item by
item on that name; other lists belong to whoever wrote them last, the manifest.
"""

from __future__ import annotations

from typing import Any

JSON = Any


def three_way_merge(last: JSON, new: JSON, live: JSON) -> JSON:
    """The live object with the manifest's changes since `last` applied on top of it.

    The inputs are never modified; the result shares the subtrees it takes unchanged from
    them (copying them would be most of apply's time), so treat all three as read-only."""
    if isinstance(new, dict) and isinstance(live, dict):
        return _merge_dicts(last if isinstance(last, dict) else {}, new, live)
    if _keyed(new) and _keyed(live):
        return _merge_keyed_lists(last if _keyed(last) else [], new, live)
    return new


def _merge_dicts(last: dict[str, JSON], new: dict[str, JSON], live: dict[str, JSON]) -> JSON:
    merged: dict[str, JSON] = {}
    for key, value in live.items():
        if key in new:
            merged[key] = three_way_merge(last.get(key), new[key], value)
        elif key not in last:
            merged[key] = value  # never in the manifest: someone else's
        elif isinstance(last[key], dict) and isinstance(value, dict):
            # Only what the manifest had set goes; what others added beside it stays.
            merged[key] = _merge_dicts(last[key], {}, value)
    for key, value in new.items():
        merged.setdefault(key, value)
    return merged


def _keyed(value: JSON) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def _merge_keyed_lists(last: list[JSON], new: list[JSON], live: list[JSON]) -> JSON:
    last_by_name = {item["name"]: item for item in last}
    live_by_name = {item["name"]: item for item in live}
    new_names = {item["name"] for item in new}
    merged = [
        three_way_merge(last_by_name.get(item["name"]), item, live_by_name[item["name"]])
        if item["name"] in live_by_name
        else item
        for item in new
    ]
    # Items others added (never in the manifest) stay, after the manifest's own.
    merged += [
        item for item in live if item["name"] not in new_names and item["name"] not in last_by_name
    ]
    return merged


def remove_path(document: dict[str, JSON], path: tuple[str, ...]) -> None:
    """Delete a nested field if present (fields apply must not touch)."""
    *parents, leaf = path
    node: JSON = document
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)


def get_path(document: dict[str, JSON], path: tuple[str, ...]) -> JSON:
    node: JSON = document
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(document: dict[str, JSON], path: tuple[str, ...], value: JSON) -> None:
    *parents, leaf = path
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
