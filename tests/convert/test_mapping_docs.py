"""docs/migration.md shows the converter's own mapping table, section by section, exactly."""

from __future__ import annotations

from constellation.convert.mapping import RULES, SECTIONS, markdown_table
from tests.convert.helpers import ROOT


def test_every_section_of_the_table_is_in_the_guide() -> None:
    guide = (ROOT / "docs" / "migration.md").read_text()
    for section, title in SECTIONS.items():
        assert f"### {title}\n\n{markdown_table(section)}\n" in guide, (
            f"docs/migration.md: the table under '### {title}' differs from "
            f"constellation/convert/mapping.py; paste markdown_table({section!r})"
        )


def test_every_rule_belongs_to_a_section_and_is_unique() -> None:
    keys = [(rule.section, rule.field) for rule in RULES]
    assert len(keys) == len(set(keys))
    assert {rule.section for rule in RULES} == set(SECTIONS)
