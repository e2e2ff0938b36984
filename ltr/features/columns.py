"""Read one column of a *column table*: a :class:`pandas.DataFrame` or any mapping of
column name -> array-like (numpy array, pandas Series or extension array, list).

Training passes DataFrames; a ranking service can pass a plain ``dict`` of numpy arrays
(one request, a few hundred rows) and skip building a DataFrame. Both give the same
values, so the preprocessing and derived features have one code path for both:

* :func:`numeric_column`: float64 with NaN for missing (``None``, NaN, ``pd.NA``); object
  values are coerced as :func:`pandas.to_numeric` does (numeric strings are numbers), and
  a present value that is not a number raises :class:`~ltr.errors.DataValidationError`.
* :func:`text_column`: each present value as ``str(v)`` (the strings
  ``Series.astype(str)`` gives for str, int, float and bool values), ``''`` where missing,
  plus the missing mask of :func:`pandas.isna`.

A numpy array given in a mapping is used as it is: an integer column with missing
values that became float (``Series.to_numpy()`` of an ``Int64`` column) reads as floats,
so as a categorical it gives ``'1.0'``, not ``'1'``. Pass such a column as the pandas
array (``series.array``) or as an object array to keep its integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype

from ltr.errors import DataValidationError

ColumnTable = pd.DataFrame | Mapping[str, Any]

_FAST_NUMERIC = "biuf"  # numpy kinds read with a plain cast to float64
_STR_CAST = "biufUS"  # numpy kinds whose str cast gives the strings of str(v)
# pandas' wrapper of a plain numpy array (PandasArray before pandas 2.1)
_NUMPY_WRAPPER = pd.arrays.NumpyExtensionArray if hasattr(pd.arrays, "NumpyExtensionArray") \
    else pd.arrays.PandasArray


def has_column(table: ColumnTable, col: str) -> bool:
    """Whether ``table`` holds column ``col``."""
    if isinstance(table, pd.DataFrame):
        return col in table.columns
    return col in table


def n_rows(table: ColumnTable) -> int:
    """Number of rows: ``len`` of a DataFrame, else the length of the first column
    (0 for an empty mapping)."""
    if isinstance(table, pd.DataFrame):
        return len(table)
    for values in table.values():
        return len(values)
    return 0


def raw_column(table: ColumnTable, col: str) -> np.ndarray | ExtensionArray:
    """The column's values without conversion: a numpy array, or the pandas extension
    array of an extension dtype (``Int64``, ``string``, ``category``, ...)."""
    values = table[col]
    if type(values) is np.ndarray:
        return values
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy() if isinstance(values.dtype, np.dtype) else values.array
    if isinstance(values, ExtensionArray):
        return values.to_numpy() if isinstance(values, _NUMPY_WRAPPER) else values
    return np.asarray(values)


def numeric_column(table: ColumnTable, col: str, source: str) -> np.ndarray:
    """Column ``col`` as float64, NaN where missing. Numeric and bool columns (numpy or
    pandas nullable) are cast; other columns are coerced like
    ``pd.to_numeric(errors="coerce")`` and a present value that is not a number raises
    :class:`DataValidationError` naming the column and the first offending rows.

    The result may share memory with the table (a float64 numpy column): do not write
    to it."""
    values = raw_column(table, col)
    if isinstance(values, np.ndarray):
        if values.dtype.kind in _FAST_NUMERIC:
            return values.astype(np.float64, copy=False)
    elif is_numeric_dtype(values.dtype) or is_bool_dtype(values.dtype):
        try:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):  # e.g. a categorical dtype: coerce below
            pass
    return _coerce_numeric(values, col, source)


def _coerce_numeric(values: np.ndarray | ExtensionArray, col: str, source: str
                    ) -> np.ndarray:
    series = pd.Series(values, copy=False)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        idx = np.flatnonzero(bad)[:5]
        raise DataValidationError(source, "numeric feature holds non-numbers", column=col,
                                  rows=idx.tolist(), values=series.iloc[idx].tolist())
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def text_column(table: ColumnTable, col: str) -> tuple[np.ndarray, np.ndarray]:
    """``(strings, missing)``: column ``col`` as an object array holding ``str(v)`` for
    each present value and ``''`` where missing, and the bool mask of :func:`pandas.isna`.

    A column of str values without missing ones is returned as it is (shared with the
    table): do not write to the result."""
    values = raw_column(table, col)
    own = True  # strings is a new array, free to change
    if isinstance(values, ExtensionArray):  # string, Int64, boolean, category, ...
        missing = np.asarray(values.isna(), dtype=bool)
        strings, own = values.to_numpy(dtype=object, copy=False), False  # may be shared
        if not isinstance(values.dtype, pd.StringDtype) and \
                infer_dtype(strings, skipna=True) not in ("string", "empty"):
            strings, own = _str_each(strings), True
    elif values.dtype.kind == "O":
        if infer_dtype(values, skipna=False) == "string":
            return values, np.zeros(len(values), dtype=bool)  # all str, none missing
        missing = pd.isna(values)
        if infer_dtype(values, skipna=True) in ("string", "empty"):
            strings, own = values, False  # keep the str objects
        else:
            strings = _str_each(values)
    elif values.dtype.kind == "f":  # integral floats as ints: 3.0 -> "3" (see _label)
        missing = pd.isna(values)
        strings = _str_each(values.astype(object))
    elif values.dtype.kind in _STR_CAST:  # numpy's str cast gives the strings of str(v)
        missing = pd.isna(values)
        strings = values.astype(str).astype(object)
    else:  # datetimes and the like: pandas' strings
        series = pd.Series(values, copy=False)
        missing = series.isna().to_numpy()
        strings = series.astype(str).to_numpy(dtype=object)
    if missing.any():
        if not own:
            strings = strings.copy()
        strings[missing] = ""
    return strings, missing


def _label(value: object) -> str:
    """A category label: ``str(v)``, except that an integral float is written as an
    integer (3.0 -> "3"). An integer column that picked up missing values in a join
    becomes float; its categories must not change with it (training joins and request
    rows would otherwise disagree)."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and \
            float(value).is_integer():
        return str(int(value))
    return str(value)


def _str_each(values: np.ndarray) -> np.ndarray:
    """:func:`_label` of each element of an object array."""
    return np.frompyfunc(_label, 1, 1)(values).astype(object, copy=False)
