"""scripts/bench_scale.py: the skip rules, the table and the --json layout (the benchmark
itself is a script run, not a timed test)."""

from __future__ import annotations

import json
import sys

from tests.scripts.loader import load_script


def _load():
    return load_script("bench_scale")


def test_skip_rules_extrapolate_memory_and_time():
    bench = _load()
    one = {1_000_000: {"prepare": {"seconds": 30.0, "peak_mb": 4000.0}}}
    # one smaller size: linear, skipped only past twice the cap
    assert bench.skip_reason("prepare", 5_000_000, one, 14_000, {"simulate"}) is None
    assert "estimated peak" in bench.skip_reason("prepare", 20_000_000, one, 14_000,
                                                 {"simulate"})
    # two sizes: affine (fixed cost + slope), against the cap itself
    two = {**one, 5_000_000: {"prepare": {"seconds": 100.0, "peak_mb": 8000.0}}}
    assert "from 1,000,000 and 5,000,000" in bench.skip_reason(
        "prepare", 20_000_000, two, 14_000, {"simulate"})
    assert "--max-step-s" in bench.skip_reason("prepare", 5_000_000, one, 1e9, {"simulate"},
                                               max_s=100)
    assert "needs prepare" in bench.skip_reason("train_mmoe", 1_000_000, {}, 1e9, set())


def test_main_prints_one_table_and_writes_json(tmp_path, monkeypatch, capsys):
    bench = _load()
    calls = []

    def fake(step, work, n, max_mb, memory_limit):
        calls.append((step, n, memory_limit))
        if step == "prepare":
            return {"error": "killed: RSS passed --max-mb 100"}
        return {"seconds": n / 1e6, "peak_mb": 100.0 + n / 1e4}

    monkeypatch.setattr(bench, "run_step", fake)
    out = tmp_path / "figures.json"
    monkeypatch.setattr(sys, "argv", [
        "bench_scale.py", "--impressions", "1000", "2000", "--steps", "simulate",
        "labels_duckdb", "prepare", "train_xgboost", "--json", str(out),
        "--work", str(tmp_path / "work"), "--memory-limit", "1GB"])
    bench.main()
    text = capsys.readouterr().out
    assert "| 2,000 | labels_duckdb |" in text and "killed" in text
    assert "needs prepare" in text  # train_xgboost skipped, with the reason
    figures = json.loads(out.read_text())
    assert set(figures) == {"1000", "2000"}
    assert set(figures["1000"]) == {"simulate", "labels_duckdb"}
    assert figures["2000"]["simulate"] == {"seconds": 0.002, "peak_mb": 100.2}
    assert ("labels_duckdb", 2000, "1GB") in calls
