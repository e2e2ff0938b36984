"""scripts/bench_text.py runs end to end (tiny model, tiny scale) and reports sane figures."""

from __future__ import annotations

import json

from tests.scripts.loader import load_script


def test_bench_text_runs_at_tiny_scale(tiny_bert_dir, tmp_path, capsys):
    bench = load_script("bench_text")
    out = tmp_path / "bench.json"
    argv = ["--model", str(tiny_bert_dir), "--max-length", "32", "--n-queries", "20"]
    argv += ["--n-products", "40", "--rows", "2000", "--ft-texts", "16", "--ft-batch", "8"]
    argv += ["--ft-epochs", "1", "--ft-layers", "2", "--json", str(out)]
    result = bench.main(argv)
    assert "texts/s" in capsys.readouterr().out
    assert json.loads(out.read_text())["log"]["rows"] == 2000
    assert result["direct"]["texts"] == 60 and result["direct"]["texts_per_s"] > 0
    assert result["log"]["ratio_to_direct"] > 0 and result["log"]["warm_seconds"] >= 0
    assert result["finetune"]["max_abs_diff_vs_full_pass"] < 1e-4
