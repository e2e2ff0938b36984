"""scripts/bench_load.py: its summary and process-tree helpers (the load itself is a
script run, not a timed test; tests/serving/test_http_workers.py drives `ltr serve`
through its server helpers)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.scripts.loader import load_script


def _load():
    return load_script("bench_load")


def test_summary_counts_good_errors_and_bad_requests():
    bench = _load()
    results = [("cold", 200, 0.010, 1.0), ("warm", 200, 0.020, 1.0), ("warm", 200, 0.030, 1.0),
               ("cold", -1, 0.001, 1.0), ("bad", 422, 0.002, 1.0), ("bad", 500, 0.002, 1.0)]
    got = bench.summarise(results, 2.0)
    assert got["requests"] == 6 and got["requests_per_s"] == 3.0
    assert got["good"] == 4 and got["good_errors"] == 1
    assert got["bad"] == 2 and got["bad_422"] == 1
    assert got["p50_ms"] == 20.0 and got["cold_p50_ms"] == 10.0 and got["warm_p50_ms"] == 25.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_tree_and_its_memory():
    bench = _load()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in bench.children(os.getpid())
        assert {os.getpid(), child.pid} <= set(bench.process_tree(os.getpid()))
        assert bench.rss_bytes(os.getpid()) > bench.rss_bytes(child.pid) > 0
    finally:
        child.kill()
        child.wait()
