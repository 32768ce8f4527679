"""Cached replicas share equal templates, and only equal ones."""

from __future__ import annotations

from constellation.apis.replica import Replica
from constellation.controllers.sharing import TemplateSharing


def replica(name: str, template_hash: str, command: list[str]) -> Replica:
    """A replica as an informer decodes it: every one its own objects."""
    return Replica.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "instanceName": "web",
                "ordinal": int(name.rsplit("-", 1)[1]),
                "template": {"command": command, "resources": {"requests": {"cpu": "50m"}}},
                "templateHash": template_hash,
            },
        }
    )


def test_replicas_with_equal_templates_share_one() -> None:
    share = TemplateSharing()
    first = share(replica("web-0", "h1", ["sleep", "1"]))
    second = share(replica("web-1", "h1", ["sleep", "1"]))
    assert second.spec.template is first.spec.template
    assert second.metadata.name == "web-1"  # only the template is shared


def test_a_template_is_shared_only_when_equal() -> None:
    share = TemplateSharing()
    first = share(replica("web-0", "h1", ["sleep", "1"]))
    other = share(replica("web-1", "h1", ["sleep", "2"]))  # same hash, other template
    assert other.spec.template is not first.spec.template
    assert other.spec.template.command == ["sleep", "2"]
    unhashed = share(replica("web-2", "", ["sleep", "1"]))
    assert unhashed.spec.template is not first.spec.template


def test_a_deep_copy_shares_nothing() -> None:
    share = TemplateSharing()
    first = share(replica("web-0", "h1", ["sleep", "1"]))
    copy = share(replica("web-1", "h1", ["sleep", "1"])).model_copy(deep=True)
    copy.spec.template.command.append("changed")
    assert first.spec.template.command == ["sleep", "1"]
