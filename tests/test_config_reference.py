"""The configuration reference is generated from the code and kept current."""

from __future__ import annotations

from pathlib import Path

from ltr.cli import main
from ltr.config_reference import reference

ROOT = Path(__file__).resolve().parents[1]


def test_docs_configuration_is_the_generated_reference():
    assert (ROOT / "docs" / "configuration.md").read_text() == reference(), \
        "docs/configuration.md is stale: run `make docs-config`"


def test_every_key_of_the_main_sections_is_described():
    text = reference()
    rows = [line for line in text.splitlines() if line.startswith("| `data.")
            or line.startswith("| `model.") or line.startswith("| `labels.")
            or line.startswith("| `text.") or line.startswith("| `study.")]
    assert len(rows) > 60
    undocumented = [r.split("|")[1].strip() for r in rows if r.rstrip().endswith("|  |")]
    assert not undocumented, undocumented
    for key in ("data.valid_query_share", "model.score_selection", "model.backbone",
                "labels.lexical_weight", "text.model_name", "study.n_trials"):
        assert f"| `{key}` |" in text, key


def test_ltr_config_prints_and_writes_it(tmp_path, capsys):
    assert main(["config", "--print-reference"]) == 0
    assert capsys.readouterr().out == reference()
    assert main(["config", "--out", str(tmp_path / "c.md")]) == 0
    assert (tmp_path / "c.md").read_text() == reference()
    assert main(["config"]) == 2  # nothing asked: a clear error, not a silent no-op
