"""``ltr simulate``: simulate a search log over a catalog and write it with its ground truth."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True,
                        help="products table (CSV/TSV/Parquet) or a WANDS folder")
    parser.add_argument("--judgements", default=None,
                        help="optional human grades (query, product_id, grade): the true "
                             "relevance; without them a synthetic relevance model is used "
                             "(exclusive with --synthetic-queries)")
    parser.add_argument("--synthetic-queries", type=int, default=None, metavar="N",
                        help="generate N synthetic queries from the catalog text, retrieve "
                             "their candidates (BM25 + embeddings) and grade them by rule "
                             "(ltr/simulate/queries.py); exclusive with --judgements")
    parser.add_argument("--exclude-queries", default=None, metavar="PATH",
                        help="table with a 'query' column (parquet/csv/tsv) or a WANDS folder "
                             "(query.tsv): never generate these queries")
    parser.add_argument("--retrieve-k", type=int, default=50, metavar="K",
                        help="candidates per retriever (BM25 and cosine) per synthetic query")
    parser.add_argument("--text-model", default="all-MiniLM-L6-v2", metavar="NAME",
                        help="encoder of the cosine retriever; 'none' = BM25 only")
    parser.add_argument("--text-cache", default=".cache/ltr-text", metavar="DIR",
                        help="embedding cache folder of the cosine retriever")
    parser.add_argument("--config", default=None, help="YAML/JSON simulator parameters")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter, e.g. --set n_sessions=5000")
    parser.add_argument("--augment", action="store_true",
                        help="fill in price/brand/rating/review_count when the catalog lacks them")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")


def _parse_overrides(items: list[str]) -> dict[str, object]:
    import yaml

    from ltr.errors import ConfigError

    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(item, "override must look like KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _exclude_queries(path: str | None) -> list[str]:
    """The ``query`` column of ``--exclude-queries`` (a table, or a WANDS folder's query.tsv)."""
    if path is None:
        return []
    from pathlib import Path

    from ltr.errors import DataValidationError
    from ltr.io import read_table

    source = Path(path) / "query.tsv" if Path(path).is_dir() else Path(path)
    table = read_table(source)
    if "query" not in table:
        raise DataValidationError(str(source), "needs a 'query' column for --exclude-queries",
                                  column="query")
    return table["query"].dropna().astype(str).tolist()


def _check_synthetic_flags(args: argparse.Namespace) -> None:
    from ltr.errors import ConfigError

    if args.synthetic_queries is None:
        return
    if args.judgements:
        raise ConfigError("--synthetic-queries", "cannot be combined with --judgements: the "
                          "synthetic queries bring their own true grades")
    if args.synthetic_queries < 1:
        raise ConfigError("--synthetic-queries",
                          f"must be a positive integer, got {args.synthetic_queries}")
    if args.retrieve_k < 1:
        raise ConfigError("--retrieve-k", f"must be a positive integer, got {args.retrieve_k}")


def _encoder(args: argparse.Namespace, fields: tuple[str, ...]) -> Any:
    if args.text_model.strip().lower() == "none":
        return None
    from ltr.text import TextConfig, TextEncoder

    return TextEncoder.from_config(TextConfig(
        model_name=args.text_model, product_fields=fields, cache_dir=args.text_cache,
        progress=False))


def _synthetic(args: argparse.Namespace, products: pd.DataFrame, exclude: list[str],
               seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Queries, candidates and grades for ``--synthetic-queries``; prints what was made.

    The encoder reads the same product text as the ``text`` features (title + product_class),
    so its cached catalog embeddings are shared with later training runs."""
    from ltr.simulate.queries import synthetic_query_candidates

    fields = ("product_class",) if "product_class" in products else ()
    t0 = time.perf_counter()
    encoder = _encoder(args, fields)
    cand, queries = synthetic_query_candidates(
        products, args.synthetic_queries, seed=seed, exclude=exclude, encoder=encoder,
        k_bm25=args.retrieve_k, k_cosine=args.retrieve_k, text_fields=fields)
    _report_synthetic(cand, queries, args.synthetic_queries, time.perf_counter() - t0)
    return cand, queries


def _report_synthetic(cand: pd.DataFrame, queries: pd.DataFrame, asked: int,
                      seconds: float) -> None:
    kept = queries["kept"]
    by_recipe = queries["recipe"].value_counts().to_dict()
    print(f"synthetic queries: {len(queries):,} generated (asked {asked:,}) in {seconds:.1f}s: "
          + ", ".join(f"{r} {c:,}" for r, c in by_recipe.items()))
    print(f"  dropped {int((~kept).sum()):,} with no candidate of grade >= 1; "
          f"{int(kept.sum()):,} kept")
    per_q = cand.groupby("query").size()
    shares = cand["grade"].value_counts(normalize=True).sort_index()
    print(f"  candidates per query: mean {per_q.mean():.1f}, min {per_q.min()}, "
          f"max {per_q.max()}; grades " + ", ".join(f"{g}: {s:.1%}" for g, s in shares.items())
          + "; retriever " + ", ".join(f"{r} {s:.1%}" for r, s in
                                      cand["retriever"].value_counts(normalize=True).items()))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ltr.data.loaders import check_judgements, check_products, load_judgements
    from ltr.data.wands import load_wands
    from ltr.simulate.catalog import augment_catalog
    from ltr.simulate.config import SimulationConfig
    from ltr.simulate.simulator import load_config_file, simulate

    base = load_config_file(args.config).to_dict() if args.config else {}
    base.update(_parse_overrides(args.set))
    config = SimulationConfig.from_dict(base)

    _check_synthetic_flags(args)
    exclude = _exclude_queries(args.exclude_queries)
    catalog = Path(args.catalog)
    judgements = None
    if catalog.is_dir():
        products, judgements = load_wands(catalog)
    else:
        from ltr.io import read_table
        products = read_table(catalog)
    if args.augment:
        products = augment_catalog(products, seed=config.seed)
    products = check_products(products, str(catalog))
    candidates = queries = None
    if args.synthetic_queries is not None:
        if judgements is not None:  # a WANDS folder: its judged queries stay out too
            exclude += judgements["query"].dropna().astype(str).tolist()
            judgements = None
        candidates, queries = _synthetic(args, products, exclude, config.seed)
        config.extra["synthetic_queries"] = {
            "n": args.synthetic_queries, "retrieve_k": args.retrieve_k,
            "text_model": args.text_model, "exclude_queries": args.exclude_queries,
            "n_excluded": len(set(exclude))}
    elif args.judgements:
        judgements = load_judgements(args.judgements, products)
    elif judgements is not None:
        judgements = check_judgements(judgements, str(catalog / "label.tsv"), products)

    t0 = time.perf_counter()
    result = simulate(products, config, judgements, candidates=candidates, queries=queries)
    elapsed = time.perf_counter() - t0
    paths = result.write(args.out, fmt=args.format)
    imp = result.impressions
    print(f"simulated {len(imp):,} impressions in {imp['session_id'].nunique():,} sessions "
          f"({imp['query'].nunique()} queries, {len(result.customers):,} customers) "
          f"in {elapsed:.1f}s")
    print(f"click rate {imp['clicked'].mean():.3f}, add-to-cart {imp['added_to_cart'].mean():.4f}, "
          f"purchase {imp['purchased'].mean():.4f}")
    for name, path in paths.items():
        print(f"  {name:17s} {path}")
    return 0
