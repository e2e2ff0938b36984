from pathlib import Path

import pytest

from ltr.cli import main as ltr
from ltr.data.wands import load_wands
from ltr.errors import DataValidationError
from tests.conftest import ROOT, SAMPLE

SHARED_WANDS = ROOT.parent / "shared" / "data" / "wands"


def _write_wands(folder: Path, label_rows: str) -> Path:
    folder.mkdir()
    (folder / "product.tsv").write_text(
        "product_id\tproduct_name\tproduct_class\tcategory_hierarchy\n"
        "1\toak bed\tBeds\tFurniture / Beds\n2\tlamp\t\t\n")
    (folder / "query.tsv").write_text("query_id\tquery\tquery_class\n10\tking bed\tBeds\n")
    (folder / "label.tsv").write_text("query_id\tproduct_id\tlabel\tgrade\n" + label_rows)
    return folder


def test_load_wands_maps_columns(tmp_path):
    products, judgements = load_wands(_write_wands(tmp_path / "w", "10\t1\tExact\t2\n10\t2\tIrrelevant\t0\n"))
    assert list(products.columns) == ["product_id", "title", "category", "product_class"]
    assert judgements.to_dict("records")[0] == {"query": "king bed", "query_id": 10,
                                                "product_id": 1, "grade": 2}


def test_load_wands_unknown_query_id(tmp_path):
    with pytest.raises(DataValidationError, match=r"label.tsv, column 'query_id'"):
        load_wands(_write_wands(tmp_path / "w", "11\t1\tExact\t2\n"))


@pytest.mark.skipif(not SHARED_WANDS.exists(), reason="shared WANDS copy not present")
def test_real_wands_subset_matches_its_readme():
    products, judgements = load_wands(SHARED_WANDS)
    assert len(products) == 6482
    assert judgements["query"].nunique() == 40
    assert len(judgements) == 6986


def test_summary_cli(capsys):
    assert ltr(["summary", "--data", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "impressions" in out and "ctr_by_position" in out
    assert ltr(["summary", "--data", "/nonexistent/folder"]) == 2
    assert "no 'products' table found" in capsys.readouterr().err
