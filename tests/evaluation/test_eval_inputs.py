"""Loading labels and predictions: layout, tie order and every documented bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.evaluation.inputs import load_inputs, parse_prediction_args


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return path


def _setup(tmp_path: Path, labels: pd.DataFrame, preds: pd.DataFrame):
    return _write(labels, tmp_path / "labels.csv"), _write(preds, tmp_path / "pred.csv")


def test_layout_scores_and_labels_line_up(files, labels_df) -> None:
    inp = load_inputs(files["labels"], [("good", str(files["good"])), (None, str(files["weak"]))])
    assert inp.models == ["good", "weak"]  # input order; unnamed file -> its stem
    assert list(inp.labels) == ["grade", "clicked", "added_to_cart", "purchased"]
    assert inp.counts["evaluated_queries"] == labels_df["query_id"].nunique()
    assert inp.counts["unscored_queries"] == inp.counts["single_item_queries"] == 0
    good = pd.read_csv(files["good"]).set_index(["query_id", "product_id"])["score"]
    lab = labels_df.set_index(["query_id", "product_id"])["grade"]
    for q in (0, 7, len(inp.keys) - 1):
        items = inp.items[q][inp.mask[q]]
        from ltr.metrics import tie_keys

        keys = tie_keys(items)  # the tie key (CRC-32 of the id's text): the tie order
        assert list(keys) == sorted(keys)
        for j, item in enumerate(items):
            key = (inp.keys[q], int(item))
            assert inp.scores["good"][q, j] == good[key]
            assert inp.labels["grade"][q, j] == lab[key]


def test_one_file_with_a_model_column(tmp_path, labels_df, predictions_for) -> None:
    a = predictions_for(labels_df, 0.3, 1).assign(model="a")
    b = predictions_for(labels_df, 1.0, 2).assign(model="b")
    labels_path, pred_path = _setup(tmp_path, labels_df, pd.concat([b, a]))
    inp = load_inputs(labels_path, [(None, str(pred_path))])
    assert inp.models == ["b", "a"]
    with pytest.raises(ConfigError, match="'model' column"):
        load_inputs(labels_path, [("x", str(pred_path))])
    with pytest.raises(ConfigError, match="given twice"):
        load_inputs(labels_path, [(None, str(pred_path)), (None, str(pred_path))])


def test_parse_prediction_args(tmp_path) -> None:
    odd = tmp_path / "lr=0.1.csv"
    odd.write_text("x")
    assert parse_prediction_args(["base=a.csv", "b.csv", str(odd)]) == [
        ("base", "a.csv"), (None, "b.csv"), (None, str(odd))]


def test_numeric_and_text_ids_match(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds["product_id"] = preds["product_id"].astype(float)  # e.g. read back as 1017.0
    labels_path, pred_path = _setup(tmp_path, labels_df, preds)
    inp = load_inputs(labels_path, [("m", str(pred_path))])
    assert inp.counts["evaluated_rows"] == len(labels_df)


def test_single_item_queries_are_excluded_and_counted(tmp_path, labels_df, predictions_for):
    extra = pd.DataFrame({"query_id": ["zz1", "zz2"], "product_id": [1, 2], "grade": [3, 0],
                          "clicked": [1, 0], "added_to_cart": [0, 0], "purchased": [0, 0]})
    labels = pd.concat([labels_df, extra], ignore_index=True)
    labels_path, pred_path = _setup(tmp_path, labels, predictions_for(labels, 0.3, 1))
    inp = load_inputs(labels_path, [("m", str(pred_path))])
    assert inp.counts["single_item_queries"] == 2
    assert "zz1" not in inp.keys and "zz2" not in inp.keys
    assert inp.counts["evaluated_queries"] == labels_df["query_id"].nunique()


def test_queries_no_model_scored_are_excluded_and_counted(tmp_path, labels_df, predictions_for):
    preds = predictions_for(labels_df, 0.3, 1)
    preds = preds[~preds["query_id"].isin(["q000", "q001", "q002"])]
    labels_path, pred_path = _setup(tmp_path, labels_df, preds)
    inp = load_inputs(labels_path, [("m", str(pred_path))])
    assert inp.counts["unscored_queries"] == 3
    assert not {"q000", "q001", "q002"} & set(inp.keys)


def _error(tmp_path, labels, preds, **kw) -> DataValidationError:
    labels_path, pred_path = _setup(tmp_path, labels, preds)
    with pytest.raises(DataValidationError) as info:
        load_inputs(labels_path, [("m", str(pred_path))], **kw)
    return info.value


def test_unknown_query_is_an_error_naming_rows(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds.loc[5, "query_id"] = "nope"
    e = _error(tmp_path, labels_df, preds)
    assert e.source.endswith("pred.csv") and e.column == "query_id"
    assert e.rows == [5] and e.values == ["nope"]
    assert "not in the labels" in str(e)


def test_unknown_product_is_an_error_naming_rows(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds.loc[3, "product_id"] = 1
    e = _error(tmp_path, labels_df, preds)
    assert e.column == "product_id" and e.rows == [3] and "not labelled" in str(e)


def test_missing_score_for_a_labelled_product_is_an_error(tmp_path, labels_df, predictions_for):
    preds = predictions_for(labels_df, 0.3, 1)
    dropped = preds.iloc[4]
    e = _error(tmp_path, labels_df, preds.drop(index=4))
    assert e.source.endswith("labels.csv")
    row = labels_df.index[(labels_df["query_id"] == dropped["query_id"])
                          & (labels_df["product_id"] == dropped["product_id"])][0]
    assert e.rows == [int(row)] and "no score" in str(e)


def test_nan_score_is_an_error_naming_rows(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds.loc[[2, 9], "score"] = np.nan
    e = _error(tmp_path, labels_df, preds)
    assert e.column == "score" and e.rows == [2, 9] and "NaN" in str(e)


def test_non_numeric_score_is_an_error(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1).astype({"score": object})
    preds.loc[6, "score"] = "high"
    e = _error(tmp_path, labels_df, preds)
    assert e.column == "score" and e.rows == [6] and e.values == ["high"]


def test_infinite_scores_are_allowed(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds.loc[0, "score"] = np.inf
    labels_path, pred_path = _setup(tmp_path, labels_df, preds)
    assert np.isinf(load_inputs(labels_path, [("m", str(pred_path))]).scores["m"]).sum() == 1


def test_duplicate_prediction_rows_are_an_error(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    preds = pd.concat([preds, preds.iloc[[7]]], ignore_index=True)
    e = _error(tmp_path, labels_df, preds)
    assert e.rows == [7, len(preds) - 1] and "duplicate" in str(e)


def test_duplicate_label_rows_are_an_error(tmp_path, labels_df, predictions_for) -> None:
    labels = pd.concat([labels_df, labels_df.iloc[[3]]], ignore_index=True)
    e = _error(tmp_path, labels, predictions_for(labels_df, 0.3, 1))
    assert e.source.endswith("labels.csv") and e.rows == [3, len(labels) - 1]


@pytest.mark.parametrize("bad", [np.nan, -1])
def test_bad_labels_are_an_error(tmp_path, labels_df, predictions_for, bad) -> None:
    labels = labels_df.astype({"clicked": float})
    labels.loc[11, "clicked"] = bad
    e = _error(tmp_path, labels, predictions_for(labels_df, 0.3, 1))
    assert e.column == "clicked" and e.rows == [11]


def test_missing_columns_and_ids_are_errors(tmp_path, labels_df, predictions_for) -> None:
    preds = predictions_for(labels_df, 0.3, 1)
    assert _error(tmp_path, labels_df, preds.drop(columns="score")).column == "score"
    e = _error(tmp_path, labels_df, preds, group_col="session_id")
    assert e.column == "session_id" and e.source.endswith("labels.csv")
    preds.loc[1, "product_id"] = np.nan
    e = _error(tmp_path, labels_df, preds)
    assert e.column == "product_id" and e.rows == [1] and "empty id" in str(e)
    with pytest.raises(ConfigError, match="label_cols"):
        labels_path, pred_path = _setup(tmp_path, labels_df.rename(columns=str.upper), preds)
        load_inputs(labels_path, [("m", str(pred_path))], group_col="QUERY_ID",
                    item_col="PRODUCT_ID")


def test_models_must_score_the_same_queries(tmp_path, labels_df, predictions_for) -> None:
    a = predictions_for(labels_df, 0.3, 1)
    b = predictions_for(labels_df, 0.3, 2)
    b = b[b["query_id"] != "q005"]
    labels_path = _write(labels_df, tmp_path / "labels.csv")
    pa, pb = _write(a, tmp_path / "a.csv"), _write(b, tmp_path / "b.csv")
    with pytest.raises(DataValidationError, match=r"model 'b' scores no item of 1 queries.*q005"):
        load_inputs(labels_path, [("a", str(pa)), ("b", str(pb))])


def test_custom_group_column_and_label_columns(tmp_path, labels_df, predictions_for) -> None:
    labels = labels_df.rename(columns={"query_id": "session_id", "grade": "rel"})
    preds = predictions_for(labels_df, 0.3, 1).rename(columns={"query_id": "session_id"})
    labels_path, pred_path = _setup(tmp_path, labels, preds)
    inp = load_inputs(labels_path, [("m", str(pred_path))], group_col="session_id",
                      label_cols=["rel", "clicked"])
    assert list(inp.labels) == ["rel", "clicked"] and inp.group_col == "session_id"
