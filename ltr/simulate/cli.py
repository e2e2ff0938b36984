"""``ltr simulate``: simulate a search log over a catalog and write it with its ground truth."""

from __future__ import annotations

import argparse
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True,
                        help="products table (CSV/TSV/Parquet) or a WANDS folder")
    parser.add_argument("--judgements", default=None,
                        help="optional human grades (query, product_id, grade): the true "
                             "relevance; without them a synthetic relevance model is used")
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
    if args.judgements:
        judgements = load_judgements(args.judgements, products)
    elif judgements is not None:
        judgements = check_judgements(judgements, str(catalog / "label.tsv"), products)

    t0 = time.perf_counter()
    result = simulate(products, config, judgements)
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
