"""``ltr evaluate`` end to end: table, report folder, numbers checked independently."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.evaluation import cli

PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ltr evaluate")
    cli.configure(parser)
    return cli.run(parser.parse_args(argv))


def _strict_json(path) -> dict:
    def no_nan(token: str):
        raise AssertionError(f"{path} holds {token}")

    return json.loads(path.read_text(), parse_constant=no_nan)


def test_end_to_end_report(files, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    rc = run_cli(["--labels", str(files["labels"]), "--predictions", f"good={files['good']}",
                  "--predictions", str(files["weak"]), "--out", str(out), "--n-resamples", "500"])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "good (baseline)" in stdout and "weak" in stdout and "grade/ndcg@10" in stdout
    for name in ("metrics.json", "metrics.csv", "per_query.csv", "summary.md",
                 "ndcg_at_k.png", "mrr_by_task.png", "label_distribution.png"):
        assert (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG

    report = _strict_json(out / "metrics.json")
    keys = list(report["models"]["good"]["metrics"])
    assert keys[:5] == ["grade/ndcg@1", "grade/ndcg@5", "grade/ndcg@10", "grade/ndcg@20",
                        "grade/err@10"]
    assert "clicked/mrr@10" in keys and "purchased/auc" in keys
    comp = report["comparisons"]["models"]["weak"]
    assert report["comparisons"]["baseline"] == "good" and set(comp) == set(keys)
    # noise 0.3 vs 3.0 around the grade: the weak model is clearly worse on NDCG
    assert comp["grade/ndcg@10"]["delta"] < 0 and comp["grade/ndcg@10"]["p_value"] < 0.01
    assert report["ndcg_curve"]["k"] == list(range(1, 21))
    curve = report["ndcg_curve"]["models"]["good"]
    assert curve[9] == pytest.approx(report["models"]["good"]["metrics"]["grade/ndcg@10"]["mean"])

    table = pd.read_csv(out / "metrics.csv")
    assert len(table) == 2 * len(keys)
    assert table.loc[table.model == "good", "p_value"].isna().all()
    assert table.loc[table.model == "weak", "p_value"].between(0, 1).all()
    per_query = pd.read_csv(out / "per_query.csv")
    assert len(per_query) == report["input_checks"]["evaluated_queries"]
    excluded = report["models"]["good"]["metrics"]["purchased/mrr@10"]["excluded"]
    assert per_query["good:purchased/mrr@10"].isna().sum() == sum(excluded.values()) > 0
    summary = (out / "summary.md").read_text()
    assert "| grade/ndcg@10 |" in summary and "ndcg_at_k.png" in summary


def test_report_numbers_match_sklearn(files, tmp_path, labels_df) -> None:
    """Whole pipeline (reading, joining shuffled rows, layout) against per-query sklearn."""
    from sklearn.metrics import ndcg_score, roc_auc_score

    out = tmp_path / "r"
    run_cli(["--labels", str(files["labels"]), "--predictions", f"good={files['good']}",
             "--out", str(out), "--gain", "linear", "--no-plots"])
    metrics = _strict_json(out / "metrics.json")["models"]["good"]["metrics"]
    preds = pd.read_csv(files["good"])
    merged = labels_df.merge(preds, on=["query_id", "product_id"])
    ndcgs, aucs, rrs = [], [], []
    for _, g in merged.groupby("query_id"):
        if g["grade"].sum() > 0:  # zero-ideal queries are excluded
            ndcgs.append(ndcg_score([g["grade"]], [g["score"]], k=10))
        if 0 < g["clicked"].sum() < len(g):
            aucs.append(roc_auc_score(g["clicked"], g["score"]))
        if g["clicked"].sum() > 0:
            ranked = g.sort_values("score", ascending=False)["clicked"].to_numpy()
            first = int(np.argmax(ranked > 0)) + 1
            rrs.append(1 / first if first <= 10 else 0.0)
    assert metrics["grade/ndcg@10"]["mean"] == pytest.approx(np.mean(ndcgs))
    assert metrics["grade/ndcg@10"]["n_queries"] == len(ndcgs)
    assert metrics["clicked/auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert metrics["clicked/auc"]["n_queries"] == len(aucs)
    assert metrics["clicked/mrr@10"]["mean"] == pytest.approx(np.mean(rrs))
    assert not list(out.glob("*.png"))


def test_ties_fall_to_the_tie_key_of_the_product_id(tmp_path) -> None:
    """Ties are ranked by the CRC-32 of the product id's text (ltr.metrics.ties), the one
    rule of every evaluation, never by the file's order."""
    labels = pd.DataFrame({"query_id": ["a"] * 3 + ["b"] * 3,
                           "product_id": ["p3", "p1", "p2", "p9", "p8", "p7"],
                           "clicked": [1, 0, 0, 0, 0, 1]})
    preds = labels[["query_id", "product_id"]].assign(score=0.5)  # every score tied
    labels.to_csv(tmp_path / "l.csv", index=False)
    preds.to_csv(tmp_path / "p.csv", index=False)
    run_cli(["--labels", str(tmp_path / "l.csv"), "--predictions", str(tmp_path / "p.csv"),
             "--out", str(tmp_path / "o"), "--metrics", "mrr@3", "--no-plots"])
    report = _strict_json(tmp_path / "o" / "metrics.json")
    import zlib

    def rank_of(clicked: str, items: list[str]) -> int:
        return sorted(items, key=lambda x: (zlib.crc32(x.encode()), x)).index(clicked) + 1

    want = (1 / rank_of("p3", ["p3", "p1", "p2"]) + 1 / rank_of("p7", ["p9", "p8", "p7"])) / 2
    assert report["models"]["p"]["metrics"]["clicked/mrr@3"]["mean"] == pytest.approx(want)
    assert report["models"]["p"]["queries_with_tied_scores"] == 2


def test_options_baseline_ttest_metrics_and_zero_ideal(files, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    rc = run_cli(["--labels", str(files["labels"]), "--predictions", f"good={files['good']}",
                  "--predictions", f"weak={files['weak']}", "--out", str(out),
                  "--baseline", "weak", "--test", "ttest", "--metrics", "grade:ndcg@3", "mrr@5",
                  "--include-zero-ideal", "--no-plots"])
    assert rc == 0
    report = _strict_json(out / "metrics.json")
    assert list(report["models"]["good"]["metrics"]) == [
        "grade/ndcg@3", "grade/mrr@5", "clicked/mrr@5", "added_to_cart/mrr@5",
        "purchased/mrr@5"]
    comp = report["comparisons"]["models"]["good"]
    assert comp["grade/mrr@5"]["test"] == "ttest" and 0 <= comp["grade/mrr@5"]["p_value"] <= 1
    n = report["input_checks"]["evaluated_queries"]
    assert all(m["n_queries"] == n for m in report["models"]["good"]["metrics"].values())
    assert "paired t-test" in capsys.readouterr().out


def test_config_errors(files, tmp_path) -> None:
    base = ["--labels", str(files["labels"]), "--predictions", f"good={files['good']}",
            "--out", str(tmp_path / "o"), "--no-plots"]
    with pytest.raises(ConfigError, match="baseline"):
        run_cli([*base, "--baseline", "nope"])
    with pytest.raises(ConfigError, match="metrics"):
        run_cli([*base, "--metrics", "precision@3"])
    with pytest.raises(ConfigError, match="no label column 'x'"):
        run_cli([*base, "--metrics", "x:ndcg@3"])


def test_errors_reach_the_user_through_ltr_cli(files, tmp_path, capsys, monkeypatch) -> None:
    from ltr import cli as ltr_cli

    assert ltr_cli.COMMANDS["evaluate"][0] == "ltr.evaluation.cli"
    # only this command, so the test does not depend on the other commands' modules
    monkeypatch.setattr(ltr_cli, "COMMANDS", {"evaluate": ltr_cli.COMMANDS["evaluate"]})
    preds = pd.read_csv(files["good"])
    preds.loc[0, "score"] = math.nan
    preds.to_csv(tmp_path / "nan.csv", index=False)
    rc = ltr_cli.main(["evaluate", "--labels", str(files["labels"]), "--predictions",
                       str(tmp_path / "nan.csv"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "column 'score'" in capsys.readouterr().err


def test_bad_input_raises_before_writing_anything(files, tmp_path) -> None:
    preds = pd.read_csv(files["good"])
    preds.loc[0, "query_id"] = "unknown"
    preds.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match="not in the labels"):
        run_cli(["--labels", str(files["labels"]), "--predictions", str(tmp_path / "bad.csv"),
                 "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
