"""SQL engines the out-of-core steps run on: DuckDB (embedded, one machine) and Spark.

Both expose the same five operations — register a file or a small pandas table as a view,
list a view's columns with their types, run a query into pandas, stream a query's rows in
batches, run a statement — so that the SQL of :mod:`ltr.scale.sql` is written once.

Memory. DuckDB holds at most ``memory_limit`` (``SET memory_limit``: hash tables and
sorts beyond it spill to ``temp_directory``), so the log's size sets the time, not the
memory. Spark's memory is the executors' (``spark.executor.memory``) and the driver's
(``spark.driver.memory``); ``memory_limit`` sets the driver's in local mode.

Row numbers. Errors name offending rows by their 0-based data-row number, like the pandas
checks: DuckDB reads Parquet's ``file_row_number`` and numbers CSV rows in read order;
Spark numbers rows in its read order (exact for one file, per-part order for a folder).
Row numbers are computed only when a check has failed, so they cost nothing otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ltr.errors import ConfigError

ENGINES = ("duckdb", "spark")
DEFAULT_MEMORY_LIMIT = "2GB"


class SqlEngine:
    """What the out-of-core steps need from an engine (see the module docstring)."""

    name = "sql"

    def __init__(self) -> None:
        self._rownum: dict[str, str] = {}  # view -> its row-number expression

    def register_file(self, view: str, path: str) -> None:
        raise NotImplementedError

    def register_frame(self, view: str, df: pd.DataFrame) -> None:
        raise NotImplementedError

    def columns(self, view: str) -> dict[str, str]:
        """Column name -> lower-case SQL type name."""
        raise NotImplementedError

    def row_number(self, view: str) -> str:
        """An expression numbering the view's rows 0, 1, ... in file order (set by
        ``register_file`` / ``register_frame``)."""
        return self._rownum[view]

    def query(self, sql: str) -> pd.DataFrame:
        raise NotImplementedError

    def batches(self, sql: str, rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def execute(self, sql: str) -> None:
        raise NotImplementedError

    def materialize(self, name: str, sql: str) -> None:
        """Compute ``sql`` once into the table ``name`` (spilled to disk past the memory
        limit), for queries that read it many times."""
        raise NotImplementedError

    def release(self, name: str) -> None:
        """Drop a table :meth:`materialize` made."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> SqlEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_csv(path: str) -> bool:
    return path.lower().rstrip("/").endswith((".csv", ".tsv"))


class DuckDBEngine(SqlEngine):
    """DuckDB in this process, memory bounded by ``memory_limit`` with spilling."""

    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, temp_directory: str | None = None,
                 threads: int | None = None) -> None:
        import duckdb

        super().__init__()
        self._tmp = None if temp_directory else tempfile.TemporaryDirectory(prefix="ltr-spill-")
        spill = temp_directory or self._tmp.name  # type: ignore[union-attr]
        # a database file, not an in-memory one: tables the steps materialise (training
        # lists sorted by rank) then live on disk behind the buffer manager, so that
        # memory_limit bounds them too
        self._db = Path(spill) / f"ltr-{os.getpid()}-{id(self)}.duckdb"
        self.con = duckdb.connect(str(self._db))
        limit = str(memory_limit or DEFAULT_MEMORY_LIMIT)
        try:
            self.con.execute(f"SET memory_limit = '{limit}'")
        except duckdb.Error as exc:
            raise ConfigError("memory_limit", f"must be a size such as '2GB' or '500MB', "
                              f"got {limit!r} ({exc})") from exc
        self.con.execute(f"SET temp_directory = '{_quote(spill)}'")
        self.con.execute("SET preserve_insertion_order = false")  # every order is explicit
        self.con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")

    def register_file(self, view: str, path: str) -> None:
        p = Path(path)
        if _is_csv(path):
            delim = "\\t" if path.lower().endswith(".tsv") else ","
            src = f"read_csv('{_quote(path)}', header = true, delim = E'{delim}')" \
                if delim != "," else f"read_csv('{_quote(path)}', header = true)"
            self._rownum[view] = "(row_number() OVER () - 1)"
        else:
            glob = str(p / "**" / "*.parquet") if p.is_dir() else path
            src = f"read_parquet('{_quote(glob)}', file_row_number = true)"
            self._rownum[view] = "file_row_number"
        self.con.execute(f"CREATE OR REPLACE TEMPORARY VIEW {view} AS SELECT * FROM {src}")

    def register_frame(self, view: str, df: pd.DataFrame) -> None:
        self.con.register(view, df)
        self._rownum[view] = "(row_number() OVER () - 1)"

    def columns(self, view: str) -> dict[str, str]:
        rows = self.con.execute(f"DESCRIBE {view}").fetchall()
        return {r[0]: str(r[1]).lower() for r in rows if r[0] != "file_row_number"}

    def query(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).fetch_df()

    def batches(self, sql: str, rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
        relation = self.con.sql(sql)
        reader = relation.to_arrow_reader(rows) if hasattr(relation, "to_arrow_reader") \
            else relation.fetch_arrow_reader(rows)
        for batch in reader:
            yield batch.to_pandas()

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def materialize(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {name} AS {sql}")

    def release(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        self.con.close()
        for path in (self._db, Path(f"{self._db}.wal")):
            path.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()


# Spark has no file row numbers: read order, numbered once a check has failed
SPARK_ROW_NUMBER = "(row_number() OVER (ORDER BY monotonically_increasing_id()) - 1)"


class SparkEngine(SqlEngine):
    """Spark SQL: ``local[N]`` by default, or the master of ``spark.master`` / spark-submit.

    The session is kept for the life of the process (starting a JVM takes seconds);
    ``conf`` entries are set when the session is first built."""

    name = "spark"

    def __init__(self, master: str | None = None, memory_limit: str | None = None,
                 conf: dict[str, Any] | None = None) -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ConfigError("engine", "spark needs pyspark: pip install 'ltr[spark]' "
                              "(and Java 17)") from exc
        super().__init__()
        builder = SparkSession.builder.appName("ltr")
        if master or not os.environ.get("SPARK_HOME"):
            builder = builder.master(master or f"local[{os.cpu_count() or 1}]")
        settings = {"spark.sql.execution.arrow.pyspark.enabled": "true",
                    "spark.sql.shuffle.partitions": str(max(2, os.cpu_count() or 1)),
                    "spark.ui.enabled": "false", "spark.sql.session.timeZone": "UTC",
                    # pandas writes nanosecond timestamps, which Spark refuses otherwise
                    "spark.sql.legacy.parquet.nanosAsLong": "true"}
        if memory_limit:
            settings["spark.driver.memory"] = _spark_size(str(memory_limit))
        settings.update({str(k): str(v) for k, v in (conf or {}).items()})
        for key, value in settings.items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")

    def register_file(self, view: str, path: str) -> None:
        reader = self.spark.read
        if _is_csv(path):
            sep = "\t" if path.lower().endswith(".tsv") else ","
            df = reader.option("header", True).option("inferSchema", True).option(
                "sep", sep).csv(path)
        else:
            df = reader.parquet(path)
        df.createOrReplaceTempView(view)
        self._rownum[view] = SPARK_ROW_NUMBER

    def register_frame(self, view: str, df: pd.DataFrame) -> None:
        self.spark.createDataFrame(df).createOrReplaceTempView(view)
        self._rownum[view] = SPARK_ROW_NUMBER

    def columns(self, view: str) -> dict[str, str]:
        return {name: kind.lower() for name, kind in self.spark.table(view).dtypes}

    def query(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    def batches(self, sql: str, rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
        df = self.spark.sql(sql)
        names, chunk = df.columns, []
        for row in df.toLocalIterator():
            chunk.append(tuple(row))
            if len(chunk) >= rows:
                yield pd.DataFrame.from_records(chunk, columns=names)
                chunk = []
        if chunk:
            yield pd.DataFrame.from_records(chunk, columns=names)

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)

    def materialize(self, name: str, sql: str) -> None:
        self.spark.sql(sql).cache().createOrReplaceTempView(name)

    def release(self, name: str) -> None:
        self.spark.catalog.uncacheTable(name)
        self.spark.catalog.dropTempView(name)


def _quote(text: str) -> str:
    return str(text).replace("'", "''")


def _spark_size(limit: str) -> str:
    """'2GB' -> '2g', '500MB' -> '500m' (Spark's size notation)."""
    text = limit.strip().lower().replace(" ", "").replace("ib", "b")
    for unit, short in (("gb", "g"), ("mb", "m"), ("kb", "k"), ("tb", "t")):
        if text.endswith(unit):
            return text[: -len(unit)] + short
    return text


def open_engine(name: str, memory_limit: str | None = None,
                spark: dict[str, Any] | None = None, prefix: str = "") -> SqlEngine:
    """An engine by name (``duckdb`` or ``spark``), or a :class:`ConfigError` naming
    ``engine``, ``memory_limit`` or ``spark.<key>`` (after ``prefix``, e.g. ``data.``).
    ``spark``: optional ``{master, conf}`` for the Spark session."""
    try:
        return _open_engine(name, memory_limit, spark)
    except ConfigError as exc:
        if not prefix:
            raise
        raise ConfigError(prefix + exc.key, exc.problem) from exc


def _open_engine(name: str, memory_limit: str | None,
                 spark: dict[str, Any] | None) -> SqlEngine:
    if name == "duckdb":
        try:
            import duckdb  # noqa: F401
        except ImportError as exc:
            raise ConfigError("engine", "duckdb is not installed: pip install duckdb "
                              "(or use engine: pandas)") from exc
        return DuckDBEngine(memory_limit)
    if name == "spark":
        spark = dict(spark or {})
        unknown = sorted(set(spark) - {"master", "conf"})
        if unknown:
            raise ConfigError(f"spark.{unknown[0]}", "unknown key; known: ['conf', 'master']")
        return SparkEngine(spark.get("master"), memory_limit, spark.get("conf"))
    raise ConfigError("engine", f"must be one of {('auto', 'pandas', *ENGINES)}, got {name!r}")

