import pandas as pd
import pytest

from ltr.errors import ConfigError
from ltr.features.split import query_folds, time_windows


def test_time_windows_by_whole_days():
    ts = pd.to_datetime(["2026-01-01 05:00", "2026-01-02 23:00", "2026-01-05 01:00",
                         "2026-01-08 12:00", "2026-01-10 10:00"])
    df = pd.DataFrame({"timestamp": ts})
    w = time_windows(df, history_days=2, valid_days=2, test_days=1)
    assert w.tolist() == ["history", "history", "train", "valid", "test"]
    with pytest.raises(ConfigError, match="data.split"):
        time_windows(df, history_days=5, valid_days=3, test_days=3)
    with pytest.raises(ConfigError, match="data.split.test_days"):
        time_windows(df, 1, 1, -1)


def test_query_folds_balanced_deterministic_order_free():
    qs = [f"q{i}" for i in range(23)]
    a = query_folds(qs, 5, seed=1)
    assert a == query_folds(list(reversed(qs)) + qs, 5, seed=1)
    sizes = pd.Series(a).value_counts()
    assert sizes.max() - sizes.min() <= 1 and len(sizes) == 5
    assert query_folds(qs, 5, seed=2) != a
    with pytest.raises(ConfigError, match="data.folds"):
        query_folds(qs, 1)
