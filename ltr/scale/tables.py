"""The small tables of a log folder for the SQL-engine paths (``ltr label --engine``,
``data.engine``): catalog, customers and judgements loaded and validated in pandas (they
are small); the impression log left to the engine.

A local folder is read with the pandas loaders; a folder on object storage
(``s3a://``, ``gs://``, ``hdfs://``: anything with ``://``) is read through the engine,
each table ``<data>/<table>.parquet`` (a file or a folder of parts), then validated by the
same pandas checks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ltr.data.loaders import SearchLog, find_table, load_customers, load_judgements, load_products
from ltr.scale.engines import SqlEngine


def log_tables(engine: SqlEngine, data: str) -> tuple[SearchLog, str]:
    """``(log without impressions, the impression file's path or URI)``."""
    data = str(data)
    if "://" in data:
        return _remote_tables(engine, data.rstrip("/"))
    paths = {name: find_table(data, name, required=name != "judgements")
             for name in ("products", "customers", "impressions", "judgements")}
    absent: dict[str, list[str]] = {"products": [], "customers": []}
    products = load_products(paths["products"], absent["products"])
    customers = load_customers(paths["customers"], absent["customers"])
    judgements = load_judgements(paths["judgements"], products) if paths["judgements"] \
        else None
    return SearchLog(products=products, customers=customers, impressions=pd.DataFrame(),
                     judgements=judgements,
                     sources={k: str(v) for k, v in paths.items() if v is not None},
                     absent_optional={k: v for k, v in absent.items() if v}), \
        str(paths["impressions"])


def _remote_tables(engine: SqlEngine, data: str) -> tuple[SearchLog, str]:
    from ltr.data.loaders import check_judgements, check_products
    from ltr.data.schema import CUSTOMERS
    from ltr.data.validate import validate_table

    def read(name: str) -> pd.DataFrame:
        engine.register_file(f"src_{name}", f"{data}/{name}.parquet")
        return engine.query(f"SELECT * FROM src_{name}")

    absent: dict[str, list[str]] = {"products": [], "customers": []}
    products = check_products(read("products"), f"{data}/products.parquet",
                              absent["products"])
    customers, absent["customers"] = validate_table(read("customers"), CUSTOMERS,
                                                    f"{data}/customers.parquet")
    judged_raw: Any
    try:
        judged_raw = read("judgements")
    except Exception:  # noqa: BLE001 - no judgements table: it is optional
        judged_raw = None
    judgements = None if judged_raw is None else \
        check_judgements(judged_raw, f"{data}/judgements.parquet", products)
    sources = {n: f"{data}/{n}.parquet" for n in ("products", "customers", "impressions")}
    if judgements is not None:
        sources["judgements"] = f"{data}/judgements.parquet"
    return SearchLog(products=products, customers=customers, impressions=pd.DataFrame(),
                     judgements=judgements, sources=sources,
                     absent_optional={k: v for k, v in absent.items() if v}), \
        f"{data}/impressions.parquet"
