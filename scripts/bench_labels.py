"""Benchmark and acceptance figures of the label pipeline.

Run: python scripts/bench_labels.py [--impressions 1000000] [--seeds 5]

1. Speed: labelling a simulated log of 1,000,000 impressions over the sample catalog
   (aggregation, PBM EM, smoothing, combination, grading), text encoding excluded: the
   similarity is given as a precomputed array, as it is once the embedding cache is warm.
   Target: <= 30 s on 2 cores.
2. Position bias: relative error of the estimated examination curve, positions 1..10,
   against the simulator's truth, on sample-sized logs (12,000 sessions x 20) for several
   seeds, and on the 1M-impression log. Target: within 10%.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ltr.io import read_table
from ltr.labels import LabelConfig, derive_labels, pair_counts
from ltr.simulate import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "wands"


def curve_error(result, truth: np.ndarray) -> float:
    est = result.position_bias.examination[:10]
    return float(np.nanmax(np.abs(est / (truth[:10] / truth[0]) - 1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    products = read_table(SAMPLE / "products.parquet")
    judged = read_table(SAMPLE / "judgements.parquet")

    sim = simulate(products, SimulationConfig(seed=0, n_sessions=args.impressions // 20,
                                              n_customers=20_000), judged)
    imp, truth = sim.impressions, sim.true_examination["examination"].to_numpy()
    config = LabelConfig()
    pairs, _, _ = pair_counts(imp, config, judged)
    similarity = np.random.default_rng(0).random(len(pairs))  # stands in for cached cosines
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = derive_labels(imp, config, similarity, judged)
        times.append(time.perf_counter() - t0)
    print(f"labelling {len(imp):,} impressions -> {len(res.labels):,} pairs: "
          f"median {np.median(times):.2f} s over 3 runs (target <= 30 s); "
          f"EM {res.position_bias.iterations} iterations")
    print(f"position bias on the {len(imp):,}-impression log: max relative error "
          f"(positions 1..10) {100 * curve_error(res, truth):.1f}%")

    # many more pairs: the synthetic relevance model over 300 product classes
    wide = simulate(products, SimulationConfig(seed=1, n_sessions=args.impressions // 20,
                                               n_customers=20_000, synthetic_queries=300,
                                               synthetic_pool=300))
    wide_pairs, _, _ = pair_counts(wide.impressions, config)
    t0 = time.perf_counter()
    res = derive_labels(wide.impressions, config,
                        np.random.default_rng(0).random(len(wide_pairs)))
    print(f"labelling {len(wide.impressions):,} impressions over "
          f"{wide.impressions['query'].nunique()} synthetic queries -> {len(res.labels):,} "
          f"pairs: {time.perf_counter() - t0:.2f} s (target <= 30 s)")

    errors = []
    for seed in range(args.seeds):
        log = simulate(products, SimulationConfig(seed=100 + seed, n_sessions=12_000,
                                                  n_customers=1_500), judged)
        r = derive_labels(log.impressions, config, variant="behaviour_only")
        errors.append(curve_error(r, log.true_examination["examination"].to_numpy()))
    print(f"position bias on sample-sized logs (240,000 impressions), {args.seeds} seeds: "
          f"max relative error per seed {', '.join(f'{100 * e:.1f}%' for e in errors)} "
          f"(target < 10%)")


if __name__ == "__main__":
    main()
