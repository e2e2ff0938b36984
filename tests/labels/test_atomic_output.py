"""``ltr label`` writes its output set whole or not at all: killed at a named point or at
a random moment, the previous set is intact; the next run succeeds and cleans up."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time

import pandas as pd
import yaml

from ltr.cli import main as ltr
from ltr.io import OUTPUT_MARKER
from tests.test_io import ROOT, child_env, leftovers, run_ltr, snapshot
from tests.text.conftest import build_tiny_bert


def test_killed_label_run_leaves_the_previous_set_whole(tiny_log_dir, tmp_path, capsys):
    log = tmp_path / "log"  # no judgements: no agreement variants, a faster run
    log.mkdir()
    for name in ("products", "customers", "impressions"):
        shutil.copy(tiny_log_dir / f"{name}.parquet", log)
    out = tmp_path / "labels"
    cfg = tmp_path / "labels.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": str(log), "out": str(out), "labels": {"lexical_weight": 0.0},
        "text": {"model_name": str(build_tiny_bert(tmp_path / "bert")), "max_length": 16,
                 "progress": False, "cache_dir": str(tmp_path / "cache")}}))
    args = ["label", "--config", str(cfg)]

    t0 = time.monotonic()
    killed = run_ltr(args, "between-files:label")  # no previous set: none appears
    duration = time.monotonic() - t0
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not out.exists() and len(leftovers(out)) == 1

    assert ltr(args) == 0  # a normal run: whole, and the killed run's temporary is gone
    first = snapshot(out)
    assert {"labels.parquet", "label_config.yaml", "report/report.md",
            OUTPUT_MARKER} <= set(first)
    assert leftovers(out) == []

    delay = random.uniform(0.3, 1.1) * duration  # a real SIGKILL at a random moment
    child = subprocess.Popen([sys.executable, "-m", "ltr.cli", *args], env=child_env(),
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    child.kill()
    child.wait(timeout=60)
    now = snapshot(out)
    assert now == first or set(now) == set(first), f"partial set after a kill at {delay:.2f}s"
    if now != first:  # the new set got in first: it is whole and readable
        assert len(pd.read_parquet(out / "labels.parquet")) > 0

    assert ltr(args) == 0
    assert set(snapshot(out)) == set(first) and leftovers(out) == []
    capsys.readouterr()


def test_label_refuses_an_unrelated_folder_before_any_work(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    cfg = tmp_path / "labels.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(tmp_path / "no-such-log"), "out": str(out)}))
    assert ltr(["label", "--config", str(cfg)]) == 2  # refused before the log is read
    err = capsys.readouterr().err
    assert "config key 'out'" in err and str(out) in err and "not an output of `ltr label`" \
        in err
    assert snapshot(out) == {"thesis.tex": b"keep me"}
