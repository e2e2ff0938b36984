"""Benchmark the simulator: time and peak memory for 1,000,000 impressions.

Run: python scripts/bench_simulate.py [--impressions 1000000]

Targets (issue 2): at most 60 s and at most 2 GB peak memory on 2 cores. Peak memory is
the process's maximum resident set size (ru_maxrss), which includes the interpreter and
the imported libraries, so it over-states the simulator's own share. Each mode runs in a
fresh subprocess so that one run's peak does not hide another's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"


def one_run(mode: str, impressions: int) -> dict[str, float]:
    from ltr.io import read_table
    from ltr.simulate import SimulationConfig, simulate

    products = read_table(SAMPLE / "products.parquet")
    judgements = read_table(SAMPLE / "judgements.parquet") if mode == "judged" else None
    list_size = 20
    config = SimulationConfig(seed=0, n_sessions=impressions // list_size, list_size=list_size,
                              n_customers=20_000)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = simulate(products, config, judgements)
    t_sim = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        result.write(tmp)
        t_write = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"impressions": len(result.impressions), "simulate_s": t_sim, "write_s": t_write,
            "peak_rss_mb": peak, "rss_before_mb": rss0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["judged", "synthetic"], default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.impressions)))
        return
    print(f"{'mode':10s} {'impressions':>12s} {'simulate s':>11s} {'write s':>8s} "
          f"{'peak RSS MB':>12s} {'imports MB':>11s}")
    for mode in ("judged", "synthetic"):
        out = subprocess.run([sys.executable, __file__, "--child", mode,
                              "--impressions", str(args.impressions)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{mode:10s} {r['impressions']:12,d} {r['simulate_s']:11.2f} {r['write_s']:8.2f} "
              f"{r['peak_rss_mb']:12.0f} {r['rss_before_mb']:11.0f}")
    print("targets: simulate <= 60 s, peak RSS <= 2048 MB for 1,000,000 impressions")


if __name__ == "__main__":
    main()
