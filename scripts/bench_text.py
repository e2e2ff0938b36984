"""Benchmark the text encoder: texts/s, log de-duplication overhead, cached-bottom fine-tuning.

Measures, on synthetic product-search texts (seeded):

1. ``direct``: encoding the unique texts (``--n-queries`` queries + ``--n-products``
   product texts) with ``TextEncoder.encode_unique``: texts/s of the encoder on this CPU.
2. ``log``: encoding a log of ``--rows`` rows whose query and product columns repeat those
   same unique texts, with ``TextEncoder.encode_texts`` and an empty on-disk cache
   (de-duplication, hashing, cache writes included). Target: ``log / direct <= 1.1``.
3. ``warm``: the same log again in a fresh encoder over the now-filled cache (a second run).
4. ``finetune``: one epoch of training the top ``--ft-layers`` layers over
   ``--ft-texts`` texts, full forward pass (frozen bottom recomputed each step) versus
   ``CachedBottomEncoder`` (bottom computed once); the speed-up per epoch, and over
   ``--ft-epochs`` epochs counting the one-off bottom pass.

Usage::

    python scripts/bench_text.py                                   # full scale, default model
    python scripts/bench_text.py --n-queries 1000 --n-products 5000 --rows 100000   # scaled
    python scripts/bench_text.py --json runs/bench_text.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

COLOURS = [
    "red",
    "blue",
    "green",
    "black",
    "white",
    "grey",
    "navy",
    "beige",
    "brown",
    "pink",
    "gold",
    "silver",
    "ivory",
    "teal",
    "olive",
]
MATERIALS = [
    "oak",
    "walnut",
    "pine",
    "metal",
    "steel",
    "glass",
    "marble",
    "velvet",
    "linen",
    "leather",
    "cotton",
    "wool",
    "rattan",
    "bamboo",
    "ceramic",
]
ADJECTIVES = [
    "modern",
    "rustic",
    "vintage",
    "industrial",
    "minimalist",
    "farmhouse",
    "classic",
    "contemporary",
    "outdoor",
    "indoor",
    "folding",
    "adjustable",
    "extendable",
    "round",
    "square",
    "rectangular",
    "large",
    "small",
    "tall",
    "low",
]
NOUNS = [
    "table",
    "chair",
    "sofa",
    "lamp",
    "desk",
    "bed",
    "rug",
    "mirror",
    "shelf",
    "cabinet",
    "dresser",
    "stool",
    "bench",
    "ottoman",
    "bookcase",
    "sideboard",
    "nightstand",
    "wardrobe",
    "headboard",
    "sectional",
    "loveseat",
    "recliner",
    "vanity",
]
FEATURES = [
    "with storage",
    "with drawers",
    "with cushions",
    "with usb port",
    "set of 2",
    "set of 4",
    "for living room",
    "for bedroom",
    "for patio",
    "for small spaces",
    "with wheels",
    "with armrests",
    "solid wood",
    "easy assembly",
]
BRANDS = [
    "Acme",
    "Northwood",
    "Hearth",
    "Loftline",
    "Brightway",
    "Oakhaven",
    "Duneport",
    "Meridian",
    "Calloway",
    "Fenwick",
]
CATEGORIES = [
    "Furniture / Living Room / Sofas",
    "Furniture / Dining / Tables",
    "Furniture / Bedroom / Beds",
    "Lighting / Table Lamps",
    "Decor / Rugs",
    "Furniture / Office / Desks",
    "Outdoor / Patio Furniture",
    "Storage / Shelving",
    "Decor / Mirrors",
    "Furniture / Bedroom / Dressers",
]


def synthetic_texts(n_queries: int, n_products: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n_queries`` unique queries (1-4 words) and ``n_products`` unique product texts
    (title of 4-9 words | brand | category path), seeded."""
    rng = np.random.default_rng(seed)

    def pick(words: list[str]) -> str:
        return words[int(rng.integers(len(words)))]

    queries: dict[str, None] = {}
    while len(queries) < n_queries:
        n = int(rng.integers(1, 5))
        parts = [pick(COLOURS), pick(MATERIALS), pick(ADJECTIVES)][: n - 1]
        rng.shuffle(parts)
        queries[" ".join([*parts, pick(NOUNS)])] = None
    products: dict[str, None] = {}
    while len(products) < n_products:
        words = [pick(ADJECTIVES), pick(COLOURS), pick(MATERIALS), pick(NOUNS)]
        if rng.random() < 0.7:
            words.append(pick(FEATURES))
        if rng.random() < 0.5:
            words.insert(0, pick(ADJECTIVES))
        words.append(f"{int(rng.integers(20, 200))} in")
        products[f"{' '.join(words)} | {pick(BRANDS)} | {pick(CATEGORIES)}"] = None
    return list(queries), list(products)


def synthetic_log(
    queries: list[str], products: list[str], rows: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Query and product columns of a ``rows``-row log: every unique text appears, popular
    ones (Zipf-like) repeat."""
    rng = np.random.default_rng(seed + 1)

    def column(values: list[str]) -> np.ndarray:
        n = len(values)
        weights = 1.0 / np.arange(1, n + 1) ** 0.8
        idx = np.concatenate(
            [np.arange(n), rng.choice(n, size=max(rows - n, 0), p=weights / weights.sum())]
        )
        rng.shuffle(idx)
        return np.asarray(values, dtype=object)[idx[:rows]]

    return column(queries), column(products)


class Timer:
    """Wall-clock and process CPU seconds of a ``with`` block.

    On a shared machine wall time swings with other processes' load; CPU time of this
    process (all its threads) follows the work done much more closely, so both are kept.
    """

    def __enter__(self) -> Timer:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def bench_encoding(args: argparse.Namespace, queries: list[str], products: list[str]) -> dict:
    from ltr.text import TextEncoder

    settings = {
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "progress": args.progress,
    }
    enc = TextEncoder.from_pretrained(args.model, **settings)
    enc.encode_unique(queries[:64] + products[:64], progress=False)  # warm-up (threads, allocator)
    n_unique = len(queries) + len(products)
    q_col, p_col = synthetic_log(queries, products, args.rows)
    out: dict = {"model": args.model, "dim": enc.dim, "layers": enc.num_layers}
    direct: list[Timer] = []
    direct_q: list[float] = []
    logs: list[Timer] = []
    log_model_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # direct and log alternate, so drifts in CPU speed hit both
            with Timer() as t_all:
                with Timer() as t_q:
                    enc.encode_unique(queries)
                enc.encode_unique(products)
            direct.append(t_all)
            direct_q.append(t_q.wall)
            if args.skip_log:
                continue
            cold = TextEncoder(
                enc.model, enc.tokenizer, name=args.model, cache_dir=f"{tmp}/{r}", **settings
            )
            with Timer() as t_log:
                q = cold.encode_texts(q_col)
                model_s = cold.last_stats.model_seconds
                p = cold.encode_texts(p_col)
            logs.append(t_log)
            log_model_s.append(model_s + cold.last_stats.model_seconds)
            assert q.embeddings.shape[0] == len(queries) and p.embeddings.shape[0] == len(products)
        best = int(np.argmin([t.wall for t in direct]))
        out["direct"] = {
            "texts": n_unique,
            "seconds_runs": [t.wall for t in direct],
            "cpu_seconds_runs": [t.cpu for t in direct],
            "texts_per_s": n_unique / direct[best].wall,
            "queries_per_s": len(queries) / direct_q[best],
            "products_per_s": len(products) / (direct[best].wall - direct_q[best]),
        }
        if args.skip_log:
            return out
        warm = TextEncoder(
            enc.model, enc.tokenizer, name=args.model, cache_dir=f"{tmp}/0", **settings
        )
        with Timer() as t_warm:
            q2 = warm.encode_texts(q_col)
            p2 = warm.encode_texts(p_col)
        assert warm.last_stats.encoded == 0
        assert np.array_equal(q2.embeddings, q.embeddings) and np.array_equal(
            p2.embeddings, p.embeddings
        )
        cache_bytes = sum(f.stat().st_size for f in Path(f"{tmp}/0").rglob("*") if f.is_file())
    out["log"] = {
        "rows": int(args.rows),
        "unique_queries": len(queries),
        "unique_products": len(products),
        "seconds_runs": [t.wall for t in logs],
        "cpu_seconds_runs": [t.cpu for t in logs],
        "model_seconds_runs": log_model_s,
        "ratio_to_direct": min(t.wall for t in logs) / min(t.wall for t in direct),
        "cpu_ratio_to_direct": min(t.cpu for t in logs) / min(t.cpu for t in direct),
        "ratio_per_run": [a.wall / b.wall for a, b in zip(logs, direct, strict=True)],
        # the log run's own encode of its unique texts is the direct encode, under the same load
        "ratio_in_run": [a.wall / b for a, b in zip(logs, log_model_s, strict=True)],
        "overhead_seconds": [a.wall - b for a, b in zip(logs, log_model_s, strict=True)],
        "warm_seconds": t_warm.wall,
        "cache_mb": cache_bytes / 2**20,
    }
    return out


def bench_finetune(args: argparse.Namespace, products: list[str]) -> dict:
    from ltr.text import CachedBottomEncoder, TextEncoder
    from ltr.text.batching import pad, tokenize

    texts = products[: args.ft_texts]
    settings = {
        "max_length": args.max_length,
        "progress": False,
        "trainable_layers": args.ft_layers,
    }
    full = TextEncoder.from_pretrained(args.model, **settings)
    cached_enc = TextEncoder.from_pretrained(args.model, **settings)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    batches = [order[i : i + args.ft_batch] for i in range(0, len(order), args.ft_batch)]
    target = torch.randn(full.dim, generator=torch.Generator().manual_seed(0))
    ids_lists = tokenize(full.tokenizer, texts, full.max_length)
    tokenized = [pad([ids_lists[i] for i in b], full.pad_id) for b in batches]  # once: not timed

    def stepper(module, forward):
        opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)

        def step(i: int, b: np.ndarray) -> tuple[float, float]:
            with Timer() as t:
                loss = (forward(i, b) - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            return t.wall, t.cpu

        return step

    bank = CachedBottomEncoder(cached_enc)
    with Timer() as t_pre:
        ids = bank.add_texts(texts)
    bank.eval()
    with torch.no_grad():
        sample = slice(0, min(256, len(texts)))
        diff = (
            (bank(ids[sample]) - cached_enc(*pad(ids_lists[sample], full.pad_id)))
            .abs()
            .max()
            .item()
        )
    full.train()
    bank.train()
    full_step = stepper(full, lambda i, b: full(*tokenized[i]))
    cached_step = stepper(bank, lambda i, b: bank(ids[b]))
    # steps alternate (full batch i, cached batch i, ...): load changes on a shared machine,
    # which last seconds to minutes, hit both paths alike
    t_full: list[Timer] = []
    t_cached: list[Timer] = []
    for _ in range(args.ft_epochs):
        sums = np.zeros((2, 2))
        for i, b in enumerate(batches):
            sums[0] += full_step(i, b)
            sums[1] += cached_step(i, b)
        for target_list, (wall, cpu) in ((t_full, sums[0]), (t_cached, sums[1])):
            t = Timer()
            t.wall, t.cpu = float(wall), float(cpu)
            target_list.append(t)
    best_full, best_cached = min(t.wall for t in t_full), min(t.wall for t in t_cached)
    e = args.ft_epochs
    return {
        "texts": len(texts),
        "layers_total": full.num_layers,
        "layers_trained": args.ft_layers,
        "batch": args.ft_batch,
        "epochs": e,
        "full_epoch_seconds": [t.wall for t in t_full],
        "cached_epoch_seconds": [t.wall for t in t_cached],
        "full_epoch_cpu_seconds": [t.cpu for t in t_full],
        "cached_epoch_cpu_seconds": [t.cpu for t in t_cached],
        "bottom_precompute_seconds": t_pre.wall,
        "speedup_per_epoch": best_full / best_cached,
        "cpu_speedup_per_epoch": min(t.cpu for t in t_full) / min(t.cpu for t in t_cached),
        "speedup_with_precompute": e * best_full / (e * best_cached + t_pre.wall),
        "max_abs_diff_vs_full_pass": diff,
    }


def report(result: dict) -> str:
    def runs(values: list[float], fmt: str = ".1f") -> str:
        return ", ".join(format(v, fmt) for v in values)

    lines = [
        f"model: {result['model']} (d={result['dim']}, {result['layers']} layers); {result['machine']}"
    ]
    d = result["direct"]
    lines.append(
        f"direct: {d['texts']:,} unique texts in {min(d['seconds_runs']):.1f} s (runs: {runs(d['seconds_runs'])} s) = "
        f"{d['texts_per_s']:.0f} texts/s (queries {d['queries_per_s']:.0f}/s, products {d['products_per_s']:.0f}/s)"
    )
    if "log" in result:
        g = result["log"]
        lines.append(
            f"log: {g['rows']:,} rows ({g['unique_queries']:,} queries, {g['unique_products']:,} products), "
            f"cold cache, in {min(g['seconds_runs']):.1f} s (runs: {runs(g['seconds_runs'])} s) -> "
            f"{g['ratio_to_direct']:.3f}x the direct encode in wall time (best vs best; per run "
            f"{runs(g['ratio_per_run'], '.3f')}), {g['cpu_ratio_to_direct']:.3f}x in CPU time; target <= 1.1. "
            f"Time outside the model (dedup, hashing, cache I/O): {runs(g['overhead_seconds'], '.2f')} s, so "
            f"log / its own encode of the unique texts = {runs(g['ratio_in_run'], '.4f')}"
        )
        lines.append(
            f"warm: same log from the on-disk cache in {g['warm_seconds']:.2f} s ({g['cache_mb']:.0f} MB cache)"
        )
    if "finetune" in result:
        f = result["finetune"]
        lines.append(
            f"finetune: top {f['layers_trained']}/{f['layers_total']} layers, {f['texts']:,} texts, batch {f['batch']}, "
            f"{f['epochs']} epochs, steps alternating: full pass {runs(f['full_epoch_seconds'], '.2f')} s/epoch, cached bottom "
            f"{runs(f['cached_epoch_seconds'], '.2f')} s/epoch -> {f['speedup_per_epoch']:.2f}x per epoch (best vs best; "
            f"{f['cpu_speedup_per_epoch']:.2f}x in CPU time); one-off bottom pass {f['bottom_precompute_seconds']:.2f} s "
            f"-> {f['speedup_with_precompute']:.2f}x over {f['epochs']} epochs; max |cached - full| = "
            f"{f['max_abs_diff_vs_full_pass']:.1e}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="all-MiniLM-L6-v2", help="text.model_name (default: offline MiniLM)"
    )
    parser.add_argument("--n-queries", type=int, default=10_000)
    parser.add_argument("--n-products", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--ft-texts", type=int, default=2_000)
    parser.add_argument("--ft-layers", type=int, default=1)
    parser.add_argument("--ft-epochs", type=int, default=3, help="epochs of each path, alternating")
    parser.add_argument("--ft-batch", type=int, default=64)
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternating direct/log runs; best of each"
    )
    parser.add_argument("--skip-log", action="store_true", help="only measure texts/s")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    queries, products = synthetic_texts(args.n_queries, args.n_products)
    result = bench_encoding(args, queries, products)
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    result["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    lines = report(result).splitlines()
    print(
        "\n".join(lines), flush=True
    )  # encoding figures first: the fine-tuning part takes a while
    if not args.skip_finetune:
        result["finetune"] = bench_finetune(args, products)
        print("\n".join(report(result).splitlines()[len(lines) :]), flush=True)
    if args.json:
        from ltr.io import write_json

        write_json(result, args.json)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
