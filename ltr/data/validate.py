"""Column-level validation and coercion against a :class:`~ltr.data.schema.TableSchema`.

Every check raises :class:`~ltr.errors.DataValidationError` naming the source file, the
column and the first few offending rows (0-based data-row numbers, header excluded) with
their values. Nothing is repaired silently: a value is either valid for its kind or an
error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltr.data.schema import Column, TableSchema
from ltr.errors import DataValidationError

MAX_SHOWN = 5


def offending(source: str, column: str | None, bad: np.ndarray | pd.Series, df: pd.DataFrame,
              problem: str, show: str | None = None) -> None:
    """Raise if any entry of the boolean ``bad`` is True, listing the first rows."""
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    shown_col = show or column
    values = df[shown_col].to_numpy()[rows[:MAX_SHOWN]].tolist() if shown_col in df else []
    raise DataValidationError(
        source, f"{len(rows)} row(s) {problem}", column=column,
        rows=rows[:MAX_SHOWN].tolist(), values=values,
    )


def require_columns(df: pd.DataFrame, schema: TableSchema, source: str) -> list[str]:
    """Check required columns exist; return the names of absent optional columns."""
    missing = [c.name for c in schema.required if c.name not in df.columns]
    if missing:
        raise DataValidationError(
            source,
            f"missing required column(s) {missing}; the {schema.name} table needs "
            f"{[c.name for c in schema.required]} (found {list(df.columns)})",
            column=missing[0],
        )
    return [c.name for c in schema.optional if c.name not in df.columns]


def coerce_column(df: pd.DataFrame, col: Column, source: str) -> pd.Series:
    """Return ``df[col.name]`` converted to the column's kind, or raise naming bad rows."""
    s = df[col.name]
    missing = s.isna().to_numpy()
    if s.dtype == object:
        missing |= s.astype(str).str.strip().eq("").to_numpy()
    if not col.nullable:
        offending(source, col.name, missing, df, "are missing (NaN or empty)")

    if col.kind == "id":
        return _as_id(s)
    if col.kind in ("text", "category"):
        return s.astype("string").where(~missing, None) if col.nullable else s.astype(str)
    if col.kind in ("int", "float", "binary"):
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna().to_numpy() & ~missing
        offending(source, col.name, bad, df, f"are not numbers (expected {col.kind})")
        values = num.to_numpy(dtype=float)
        offending(source, col.name, np.isinf(values), df, "are infinite")
        if col.kind == "float":
            return pd.Series(values, index=s.index, name=col.name)
        finite = ~np.isnan(values)
        frac = np.zeros_like(finite)
        frac[finite] = values[finite] != np.round(values[finite])
        offending(source, col.name, frac, df, f"are not whole numbers (expected {col.kind})")
        if col.kind == "binary":
            offending(source, col.name, finite & ~np.isin(values, (0, 1)), df, "are not 0 or 1")
            return pd.Series(values, index=s.index, name=col.name).astype("int8")
        if col.nullable and not finite.all():
            return pd.Series(values, index=s.index, name=col.name).astype("Int64")
        return pd.Series(values, index=s.index, name=col.name).astype("int64")
    if col.kind == "datetime":
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(s):
            return s
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            return _epoch(s, df, col, source)
        text = s.astype("string").str.strip()
        aware = text.str.contains(TZ_SUFFIX, regex=True, na=False).to_numpy()
        if aware.any():
            offending(source, col.name, ~aware & ~missing, df,
                      "have no time-zone offset while other rows have one (e.g. "
                      f"{text[aware].iloc[0]!r}); mixing local and zoned times is "
                      "ambiguous: give every row an offset, or none")
        out = pd.to_datetime(s, errors="coerce", format="mixed", utc=bool(aware.any()))
        offending(source, col.name, out.isna().to_numpy() & ~missing, df,
                  "are not parseable timestamps")
        return out.dt.tz_localize(None) if aware.any() else out
    raise ValueError(f"unknown column kind {col.kind!r}")


# a time-zone suffix: Z, UTC or an offset such as +01:00 / -0500. Zoned timestamps are
# converted to UTC (and stored without a zone); naive ones are taken as they are.
TZ_SUFFIX = r"(?:Z|UTC|[+-]\d{2}:?\d{2})$"

# Unix epoch units, detected by magnitude: a timestamp between 1973-03-03 (1e8 s) and
# 2286-11-20 (1e10 s) is in seconds, x 1e3 in milliseconds, x 1e6 microseconds, x 1e9
# nanoseconds. The ranges do not overlap, so the unit of every value is unambiguous.
EPOCH_UNITS = (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9))


def _epoch(s: pd.Series, df: pd.DataFrame, col: Column, source: str) -> pd.Series:
    """Numeric timestamps: the epoch unit is read from the magnitude; a value of no unit,
    or a column that mixes units, is refused naming its rows."""
    values = s.to_numpy(dtype=float)
    finite = np.isfinite(values)
    offending(source, col.name, np.isinf(values), df, "are infinite")
    unit_of = np.full(len(values), -1)
    for i, (_, scale) in enumerate(EPOCH_UNITS):
        unit_of[finite & (values >= 1e8 * scale) & (values < 1e10 * scale)] = i
    offending(source, col.name, finite & (unit_of < 0), df,
              "are numbers but not Unix timestamps in seconds, milliseconds, microseconds or "
              "nanoseconds between 1973 and 2286")
    if not finite.any():
        return pd.Series(pd.NaT, index=s.index, name=col.name, dtype="datetime64[ns]")
    counts = np.bincount(unit_of[finite], minlength=len(EPOCH_UNITS))
    unit = int(np.argmax(counts))
    names = [EPOCH_UNITS[i][0] for i in np.flatnonzero(counts)]
    offending(source, col.name, finite & (unit_of != unit), df,
              f"are Unix timestamps in another unit than the column's other rows "
              f"({EPOCH_UNITS[unit][0]}; units found: {names})")
    exact = s.to_numpy() if pd.api.types.is_integer_dtype(s) else \
        np.where(finite, values, np.nan)  # integers keep their nanoseconds exactly
    out = pd.to_datetime(exact, unit=EPOCH_UNITS[unit][0])
    return pd.Series(out, index=s.index, name=col.name)


def _as_id(s: pd.Series) -> pd.Series:
    """Identifiers become int64 when every value is a whole number, else str."""
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        values = num.to_numpy(dtype=float)
        if (values == np.round(values)).all():
            return pd.Series(values.astype("int64"), index=s.index, name=s.name)
    return s.astype(str)


def validate_table(df: pd.DataFrame, schema: TableSchema, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Check columns, coerce kinds, check the key is unique.

    Returns the coerced table (extra columns kept as they are) and the names of absent
    optional columns.
    """
    absent = require_columns(df, schema, source)
    if df.empty:
        raise DataValidationError(source, f"has its columns but no rows: the {schema.name} "
                                  "table needs at least one")
    df = df.reset_index(drop=True).copy()
    for col in schema.columns:
        if col.name in df.columns:
            df[col.name] = coerce_column(df, col, source)
    dup = df.duplicated(list(schema.key), keep="first").to_numpy()
    offending(source, ",".join(schema.key), dup, df,
              f"repeat the key ({', '.join(schema.key)}) of an earlier row",
              show=schema.key[0])
    return df, absent
