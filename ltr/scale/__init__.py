"""Out-of-core steps on a SQL engine: DuckDB on one machine, Spark on a cluster.

:mod:`ltr.scale.engines` opens an engine (``duckdb`` with a ``memory_limit`` and a spill
folder, or ``spark``), :mod:`ltr.scale.sql` holds the SQL both run, written once, and
:mod:`ltr.scale.labels` checks an impression log against the data contract and reduces it
to the :class:`~ltr.labels.aggregate.LogAggregates` the label rule works on. See
docs/scale.md.
"""

from ltr.scale.engines import ENGINES, SqlEngine, open_engine
from ltr.scale.labels import LogScan, aggregate_sql, check_impressions_sql, scan_log

__all__ = ["ENGINES", "LogScan", "SqlEngine", "aggregate_sql", "check_impressions_sql",
           "open_engine", "scan_log"]
