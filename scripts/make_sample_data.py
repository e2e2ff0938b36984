"""Regenerate data_samples/wands/ from ../shared/data/wands (or --wands DIR).

Run: python scripts/make_sample_data.py

Steps: read WANDS (products, queries, grades) -> fill in synthetic price/brand/rating/
review_count (ltr.simulate.catalog.augment_catalog, seed 7) -> simulate a search log with
configs/simulate_wands.yaml using the human grades as true relevance -> write products,
customers, impressions, judgements and ground_truth/ as Parquet.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ltr.data.loaders import check_judgements, check_products
from ltr.data.wands import load_wands
from ltr.io import write_table
from ltr.simulate.catalog import augment_catalog
from ltr.simulate.simulator import load_config_file, simulate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wands", default=str(ROOT.parent / "shared" / "data" / "wands"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "simulate_wands.yaml"))
    parser.add_argument("--out", default=str(ROOT / "data_samples" / "wands"))
    args = parser.parse_args()

    config = load_config_file(args.config)
    products, judgements = load_wands(args.wands)
    products = check_products(augment_catalog(products, seed=config.seed), args.wands)
    judgements = check_judgements(judgements, args.wands, products)
    result = simulate(products, config, judgements)
    out = Path(args.out)
    result.write(out)
    write_table(judgements, out / "judgements.parquet")
    readme = Path(args.wands) / "README.md"
    if readme.exists():
        shutil.copyfile(readme, out / "WANDS_README.md")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.1f} MB): {len(products)} products, "
          f"{len(result.impressions)} impressions, {len(judgements)} judged pairs")


if __name__ == "__main__":
    main()
