"""The main job on the bundled sample data (run by `make demo`).

Step 1: validate and summarise the bundled WANDS sample log (data_samples/wands).
Step 2: simulate a fresh log over the same catalog with the simulator, load it back
        through the validating loaders and summarise it.
Later stages (labels, model training, evaluation) are added as they land.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from ltr.cli import main as ltr

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ ltr {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = ltr(argv)
    if rc != 0:
        sys.exit(rc)
    print(f"({time.perf_counter() - t0:.1f}s)")


def main() -> None:
    step("bundled sample log", ["summary", "--data", str(SAMPLE)])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim"
        step("simulate a log over the sample catalog",
             ["simulate", "--catalog", str(SAMPLE / "products.parquet"),
              "--judgements", str(SAMPLE / "judgements.parquet"),
              "--config", str(ROOT / "configs" / "simulate_wands.yaml"),
              "--set", "n_sessions=5000", "--set", "seed=1", "--out", str(out)])
        step("load the simulated log back", ["summary", "--data", str(out)])


if __name__ == "__main__":
    main()
