"""The three-way merge behind apply."""

from __future__ import annotations

from constellation.client.merge import three_way_merge


def test_removing_a_key_removes_only_what_the_manifest_had_set() -> None:
    last = {"labels": {"a": "1", "b": "2"}}
    new = {"labels": {"a": "1"}}
    live = {"labels": {"a": "1", "b": "2", "added-by-controller": "x"}}
    assert three_way_merge(last, new, live) == {"labels": {"a": "1", "added-by-controller": "x"}}


def test_removing_a_whole_map_keeps_what_others_added_to_it() -> None:
    last = {"labels": {"a": "1"}}
    live = {"labels": {"a": "1", "other": "x"}}
    assert three_way_merge(last, {}, live) == {"labels": {"other": "x"}}


def test_fields_the_manifest_never_had_survive() -> None:
    live = {"spec": {"x": 1}, "status": {"ready": 2}, "metadata": {"uid": "u"}}
    merged = three_way_merge({"spec": {"x": 1}}, {"spec": {"x": 2}}, live)
    assert merged == {"spec": {"x": 2}, "status": {"ready": 2}, "metadata": {"uid": "u"}}


def test_named_lists_merge_by_name() -> None:
    last = {"ports": [{"name": "http", "port": 80}, {"name": "old", "port": 1}]}
    new = {"ports": [{"name": "https", "port": 443}, {"name": "http", "port": 8080}]}
    live = {
        "ports": [
            {"name": "http", "port": 80},
            {"name": "old", "port": 1},
            {"name": "sidecar", "port": 9},
        ]
    }
    assert three_way_merge(last, new, live) == {
        "ports": [
            {"name": "https", "port": 443},
            {"name": "http", "port": 8080},
            {"name": "sidecar", "port": 9},
        ]
    }


def test_plain_lists_are_replaced() -> None:
    live = {"command": ["a", "b"]}
    assert three_way_merge({"command": ["a", "b"]}, {"command": ["c"]}, live) == {"command": ["c"]}


def test_the_inputs_are_not_modified() -> None:
    last, new, live = {"m": {"a": 1}}, {"m": {"b": 2}}, {"m": {"a": 1, "c": 3}}
    three_way_merge(last, new, live)
    assert (last, new, live) == ({"m": {"a": 1}}, {"m": {"b": 2}}, {"m": {"a": 1, "c": 3}})
