"""docs/robustness.md is the table of the suite's cases, kept current."""

from __future__ import annotations

from tests.robustness.table import DOC, all_cases, render


def test_suite_has_enough_cases_in_every_area() -> None:
    cases = all_cases()
    areas = {c.area for c in cases}
    assert {"data", "config", "cli", "package", "request", "interruption"} <= areas
    assert len(cases) >= 120


def test_robustness_doc_is_current() -> None:
    assert DOC.read_text() == render(all_cases()), \
        "docs/robustness.md is out of date: run python -m tests.robustness.table"
