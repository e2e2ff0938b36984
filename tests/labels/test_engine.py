"""The out-of-core label path (ltr.scale): the same labels as pandas, the same contract
checks, and Spark local mode equal to DuckDB."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from ltr.data.loaders import load_impressions, load_log
from ltr.errors import ConfigError, DataValidationError
from ltr.labels import LabelConfig, derive_labels
from ltr.labels.aggregate import aggregate_log
from ltr.labels.artifact import window_fingerprint
from ltr.labels.run import resolve_engine
from ltr.scale import open_engine, scan_log
from tests.conftest import write_tables

pytest.importorskip("duckdb")

INT_COLUMNS = ["grade", "impressions", "clicks", "carts", "purchases"]


def similarity(queries: np.ndarray, product_ids: np.ndarray) -> np.ndarray:
    """A fixed stand-in for the text cosine: a function of the pair only."""
    q = np.array([sum(map(ord, str(x))) for x in queries], dtype=float)
    return np.cos(q * 0.37 + np.asarray(product_ids, dtype=float) * 0.11)


def assert_same_labels(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values(["query", "product_id"], ignore_index=True)
    b = b.sort_values(["query", "product_id"], ignore_index=True)
    assert a[["query", "product_id"]].equals(b[["query", "product_id"]])
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if col in INT_COLUMNS:
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
        elif col not in ("query", "product_id"):
            np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float),
                                       rtol=0, atol=1e-9, err_msg=col)


@pytest.fixture(scope="module")
def pandas_log(tiny_log_dir):
    return load_log(tiny_log_dir)


@pytest.fixture(scope="module")
def duck_scan(tiny_log_dir, pandas_log):
    with open_engine("duckdb", memory_limit="256MB") as eng:
        return scan_log(eng, str(tiny_log_dir / "impressions.parquet"), pandas_log.products,
                        pandas_log.customers)


@pytest.mark.parametrize("variant", ["combined", "behaviour_only"])
def test_duckdb_labels_equal_pandas(pandas_log, duck_scan, variant):
    log, config = pandas_log, LabelConfig()
    judged = log.judgements[["query", "product_id"]]
    sim = None if variant == "behaviour_only" else similarity
    ref = derive_labels(log.impressions, config, sim, judged, variant)
    out = derive_labels(duck_scan.aggregates, config, sim, judged, variant)
    assert len(out.labels) == len(ref.labels) > 100
    assert_same_labels(ref.labels, out.labels)
    np.testing.assert_allclose(out.position_bias.examination, ref.position_bias.examination,
                               atol=1e-9)
    assert out.notes == ref.notes


def test_duckdb_counts_and_fingerprint_equal_pandas(pandas_log, duck_scan):
    imp = pandas_log.impressions
    agg = aggregate_log(imp)
    assert duck_scan.n_impressions == len(imp)
    assert duck_scan.fingerprint == window_fingerprint(imp)
    pd.testing.assert_frame_equal(
        agg.pairs.sort_values(["query", "product_id"], ignore_index=True),
        duck_scan.aggregates.pairs, check_exact=False, rtol=0, atol=1e-9)
    assert duck_scan.aggregates.n_positions == agg.n_positions
    cells = lambda a: sorted(zip(a.pairs["query"].to_numpy()[a.cell_pair],  # noqa: E731
                                 a.pairs["product_id"].to_numpy()[a.cell_pair],
                                 a.cell_position, a.cell_impressions, a.cell_clicks,
                                 strict=True))
    assert cells(duck_scan.aggregates) == cells(agg)


def test_csv_log_and_string_ids(tiny_log_dir, pandas_log, tmp_path):
    """A CSV log with text session ids: same aggregates; ids typed as the loader does."""
    imp = pd.read_parquet(tiny_log_dir / "impressions.parquet")
    imp["session_id"] = "s" + imp["session_id"].astype(str)
    path = tmp_path / "impressions.csv"
    imp.to_csv(path, index=False)
    with open_engine("duckdb") as eng:
        scan = scan_log(eng, str(path), pandas_log.products, pandas_log.customers)
    ref = load_impressions(path, pandas_log.products, pandas_log.customers)
    assert scan.fingerprint == window_fingerprint(ref)
    assert scan.aggregates.pairs["product_id"].dtype == np.int64
    pd.testing.assert_frame_equal(
        aggregate_log(ref).pairs.sort_values(["query", "product_id"], ignore_index=True),
        scan.aggregates.pairs, check_exact=False, rtol=0, atol=1e-9)


WINDOWS = [{"split": {"history_days": 7, "valid_days": 3, "test_days": 4}},
           {"split": {"history_days": 5, "valid_days": 2, "test_days": 3}, "folds": 3,
            "fold": 1, "seed": 4}]


@pytest.mark.parametrize("fmt", ["parquet", "csv_epoch_ms"])
@pytest.mark.parametrize("window", WINDOWS, ids=["split", "split+fold"])
def test_training_window_on_the_engine_equals_pandas(tiny_log_dir, pandas_log, tmp_path,
                                                     window, fmt):
    """The engine cuts the training window ltr fit cuts: same rows (count, fingerprint)
    and the same aggregates, from typed timestamps or epoch milliseconds in a CSV."""
    from ltr.features.split import training_window, window_description

    described = window_description(window["split"], window.get("folds", 0),
                                   window.get("fold", 0), window.get("seed", 0))
    described = {**window, **described}
    imp = pandas_log.impressions.assign(query=pandas_log.impressions["query"].astype(str))
    judged = set(pandas_log.judgements["query"].astype(str))
    _, train, _ = training_window(imp, judged, described["split"], window.get("folds", 0),
                                  window.get("fold", 0), window.get("seed", 0))
    ref = imp[train]
    path = tiny_log_dir / "impressions.parquet"
    if fmt == "csv_epoch_ms":
        raw = pd.read_parquet(path)
        raw["timestamp"] = raw["timestamp"].astype("int64") // 10**6
        path = tmp_path / "impressions.csv"
        raw.to_csv(path, index=False)
    with open_engine("duckdb") as eng:
        scan = scan_log(eng, str(path), pandas_log.products, pandas_log.customers,
                        window=described, judged_queries=judged)
    assert 0 < scan.n_impressions == len(ref) < len(imp)
    assert scan.fingerprint == window_fingerprint(ref)
    pd.testing.assert_frame_equal(
        aggregate_log(ref).pairs.sort_values(["query", "product_id"], ignore_index=True),
        scan.aggregates.pairs, check_exact=False, rtol=0, atol=1e-9)


def _broken(tiny_log_dir, tmp_path, fmt, change):
    imp = pd.read_parquet(tiny_log_dir / "impressions.parquet").head(200)
    write_tables({"impressions": change(imp.copy())}, tmp_path, fmt)
    return tmp_path / f"impressions.{fmt}"


def _set(column, rows, value, dtype=None):
    def change(df):
        if dtype:
            df[column] = df[column].astype(dtype)
        df.loc[rows, column] = value
        return df
    return change


CASES = {
    "null outcome": ("clicked", _set("clicked", [3, 7], None, "float")),
    "outcome 2": ("purchased", _set("purchased", [5], 2)),
    "position 0": ("position", _set("position", [4, 19], 0)),
    "position 1.5": ("position", _set("position", [2], 1.5, "float")),
    "blank query": ("query", _set("query", [6], "  ", str)),
    "unknown product": ("product_id", _set("product_id", [8, 11], 99_999_999)),
    "purchase without click": ("purchased", lambda df: df.assign(
        purchased=np.where(df.index == 12, 1, df["purchased"]),
        clicked=np.where(df.index == 12, 0, df["clicked"]))),
}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_sql_checks_name_file_column_and_rows_like_pandas(tiny_log_dir, pandas_log, tmp_path,
                                                         case, fmt):
    column, change = CASES[case]
    path = _broken(tiny_log_dir, tmp_path, fmt, change)
    with pytest.raises(DataValidationError) as ref:
        load_impressions(path, pandas_log.products, pandas_log.customers)
    with open_engine("duckdb") as eng, pytest.raises(DataValidationError) as got:
        scan_log(eng, str(path), pandas_log.products, pandas_log.customers)
    err = got.value
    assert err.source == str(path) and err.column == column == ref.value.column
    assert err.rows == ref.value.rows, (str(err), str(ref.value))
    assert str(path) in str(err) and f"'{column}'" in str(err)


@pytest.mark.parametrize("change, column", [
    (lambda df: df.drop(columns=["clicked"]), "clicked"),
    (lambda df: df.assign(position=np.where(df.index == 1, df["position"].iloc[0],
                                            df["position"])), "session_id,position"),
    (lambda df: df.assign(query=np.where(df.index == 1, "another query", df["query"])),
     "query"),
    (lambda df: df.assign(customer_id=np.where(df.index == 1, 999_999, df["customer_id"])),
     "customer_id"),
])
def test_sql_checks_per_session_and_columns(tiny_log_dir, pandas_log, tmp_path, change,
                                            column):
    path = _broken(tiny_log_dir, tmp_path, "parquet", change)
    with open_engine("duckdb") as eng, pytest.raises(DataValidationError) as got:
        scan_log(eng, str(path), pandas_log.products, pandas_log.customers)
    assert got.value.column == column and str(path) in str(got.value)
    if column != "clicked":
        assert got.value.rows and got.value.rows[0] in (0, 1)


def test_engine_settings_name_their_key():
    with pytest.raises(ConfigError, match="memory_limit"):
        open_engine("duckdb", memory_limit="lots")
    with pytest.raises(ConfigError, match="'engine'"):
        open_engine("polars")
    assert resolve_engine(None) == "duckdb"
    assert resolve_engine("pandas") == "pandas"


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'ltr[spark]')"
    if shutil.which("java") is None:
        return "no Java on PATH (Spark needs Java 17)"
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"java -version failed: {exc}"
    return None


def test_spark_local_mode_equals_duckdb(tiny_log_dir, pandas_log, duck_scan, tmp_path):
    reason = _spark_missing()
    if reason:
        print(f"skipping the Spark test: {reason}")
        pytest.skip(reason)
    with open_engine("spark", memory_limit="1g",
                     spark={"master": "local[2]",
                            "conf": {"spark.sql.shuffle.partitions": "2"}}) as eng:
        scan = scan_log(eng, str(tiny_log_dir / "impressions.parquet"), pandas_log.products,
                        pandas_log.customers)
        window = {**WINDOWS[1], "split": WINDOWS[1]["split"]}
        judged = set(pandas_log.judgements["query"].astype(str))
        spark_window = scan_log(eng, str(tiny_log_dir / "impressions.parquet"),
                                pandas_log.products, pandas_log.customers, window=window,
                                judged_queries=judged)
        bad = _broken(tiny_log_dir, tmp_path, "parquet", CASES["position 0"][1])
        with pytest.raises(DataValidationError) as err:
            scan_log(eng, str(bad), pandas_log.products, pandas_log.customers)
    assert err.value.column == "position" and err.value.rows == [4, 19]
    assert scan.n_impressions == duck_scan.n_impressions
    assert scan.fingerprint == duck_scan.fingerprint
    pd.testing.assert_frame_equal(scan.aggregates.pairs, duck_scan.aggregates.pairs,
                                  check_exact=False, rtol=0, atol=1e-9)
    for name in ("cell_pair", "cell_position", "cell_impressions", "cell_clicks"):
        np.testing.assert_array_equal(getattr(scan.aggregates, name),
                                      getattr(duck_scan.aggregates, name))
    with open_engine("duckdb") as eng:  # a training window: cut the same way
        duck_window = scan_log(eng, str(tiny_log_dir / "impressions.parquet"),
                               pandas_log.products, pandas_log.customers, window=window,
                               judged_queries=judged)
    assert (spark_window.n_impressions, spark_window.fingerprint) == \
        (duck_window.n_impressions, duck_window.fingerprint)
    pd.testing.assert_frame_equal(spark_window.aggregates.pairs, duck_window.aggregates.pairs,
                                  check_exact=False, rtol=0, atol=1e-9)
    config = LabelConfig()
    assert_same_labels(derive_labels(duck_scan.aggregates, config, similarity).labels,
                       derive_labels(scan.aggregates, config, similarity).labels)
    # a log folder given as a URI (object storage on a cluster): every table read by Spark
    from ltr.labels.run import scan_run_log

    log, remote = scan_run_log({"data": f"file://{tiny_log_dir}",
                                "spark": {"master": "local[2]"}}, "spark")
    assert remote.fingerprint == duck_scan.fingerprint
    assert len(log.products) == len(pandas_log.products)
    assert len(log.judgements) == len(pandas_log.judgements)


@pytest.mark.parametrize("window", [None, WINDOWS[1]], ids=["whole log", "window"])
def test_ltr_label_engine_flag_gives_the_same_label_files(tiny_log_dir, tmp_path, capsys,
                                                         window):
    """``ltr label --engine duckdb`` and ``--engine pandas``: the same labels.parquet and
    the same window fingerprint in label_config.yaml, for the whole log and for a
    training window."""
    import yaml

    from ltr.cli import main as ltr
    from ltr.io import read_table
    from tests.text.conftest import build_tiny_bert

    model = build_tiny_bert(tmp_path / "bert")
    outputs = {}
    for engine in ("pandas", "duckdb"):
        cfg = {"data": str(tiny_log_dir), "out": str(tmp_path / engine),
               "text": {"model_name": str(model), "product_fields": ["product_class"],
                        "max_length": 32, "progress": False,
                        "cache_dir": str(tmp_path / "cache")}}
        if window:
            cfg["window"] = window
        path = tmp_path / f"{engine}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert ltr(["label", "--config", str(path), "--engine", engine]) == 0
        written = yaml.safe_load((tmp_path / engine / "label_config.yaml").read_text())
        assert written["engine"] == engine
        outputs[engine] = (read_table(tmp_path / engine / "labels.parquet"),
                           written["fingerprint"], written["impressions"])
    (ref, fp_ref, n_ref), (got, fp, n) = outputs["pandas"], outputs["duckdb"]
    assert (fp, n) == (fp_ref, n_ref)
    assert_same_labels(ref, got)
