"""``ltr serve --workers 2`` in a subprocess: a worker killed with SIGKILL is replaced by
uvicorn's supervisor (``uvicorn/supervisors/multiprocess.py``, ``keep_subprocess_alive``:
every 0.5 s a dead worker is joined and a new one started), and requests keep being
answered meanwhile by the other worker. Process helpers come from
``scripts/bench_load.py``, which does the same under load."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.scripts.loader import load_script

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn", reason="ltr serve needs uvicorn (the 'serve' extra)")
httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") and importlib.util.find_spec("psutil") is None,
    reason="finding worker processes needs psutil or Linux's /proc")

def _bench_load():
    return load_script("bench_load")


def _wait(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_a_killed_worker_is_replaced_and_service_continues(packages, tmp_path):
    bench = _bench_load()
    folder = packages["mmoe_tabular"][1]  # a text model's workers take longer to start
    port = bench.free_port()
    log = tmp_path / "serve.log"
    proc = bench.start_server(folder, port, workers=2, log=log)
    try:
        bench.wait_healthy(port, proc, timeout=60)
        workers = _wait(lambda: len(w := bench.worker_pids(proc.pid)) == 2 and w, 30,
                        "2 workers")
        import pandas as pd

        ids = pd.read_parquet(folder / "catalog" / "products.parquet")["product_id"][:5]
        body = {"query": "modern sofa", "products": [int(i) for i in ids], "top_k": 3}

        def rank() -> int:  # a fresh connection each time: any worker may take it
            return httpx.post(f"http://127.0.0.1:{port}/rank", json=body, timeout=30
                              ).status_code

        assert [rank() for _ in range(4)] == [200] * 4
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            times = []
            for _ in range(12):  # keep-alive: without TCP_NODELAY each took >= 40 ms
                t0 = time.perf_counter()
                assert client.get("/health").status_code == 200
                times.append(time.perf_counter() - t0)
        assert sorted(times[2:])[5] < 0.035, times
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        # the other worker answers while the supervisor notices and starts a new one
        statuses = [rank() for _ in range(10)]
        assert statuses == [200] * 10, statuses
        now = _wait(lambda: len(w := bench.worker_pids(proc.pid)) == 2 and victim not in w
                    and w, 30, "a replacement worker")
        assert victim not in now and workers[1] in now
        assert proc.poll() is None
        # the replacement serves: with the other original worker killed too, requests
        # wait in the master's listening socket until a new worker takes them
        os.kill(workers[1], signal.SIGKILL)
        assert [rank() for _ in range(4)] == [200] * 4
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["status"] \
            == "ok"
        now = _wait(lambda: len(w := bench.worker_pids(proc.pid)) == 2
                    and not set(w) & set(workers) and w, 30, "two new workers")
    finally:
        bench.stop_server(proc)
    assert proc.returncode is not None
    _wait(lambda: not any(Path(f"/proc/{p}").exists() for p in now), 10,
          "the workers to exit")
