"""De-duplicating texts and hashing them into cache keys.

A search log repeats the same few thousand queries and products millions of times, so
every encoder entry point first reduces its input to the unique texts plus an inverse
index (``texts[i] == uniques[inverse[i]]``) and encodes each unique text once.

Cache keys are 16-byte BLAKE2b digests of the UTF-8 text: fixed width (they fit in a
``uint8 [n, 16]`` array on disk), and collisions are negligible (birthday bound
~2^64 texts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError

KEY_BYTES = 16


def unique_texts(
    texts: Sequence[str] | np.ndarray | pd.Series, source: str = "texts"
) -> tuple[list[str], np.ndarray]:
    """Reduce ``texts`` to its unique values and a row-aligned inverse index.

    Returns:
        ``(uniques, inverse)`` with ``uniques`` in order of first appearance and
        ``inverse`` an int64 ``[len(texts)]`` array such that
        ``texts[i] == uniques[inverse[i]]``.

    Raises:
        DataValidationError: an entry is missing (None/NaN) or not a string; the message
            names ``source`` and the first offending rows.
    """
    values = texts.to_numpy(dtype=object) if isinstance(texts, pd.Series) else texts
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise DataValidationError(
            source, f"expected a 1-D sequence of texts, got shape {arr.shape}"
        )
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    uniques = list(uniques)
    bad_rows = np.flatnonzero(codes < 0)
    bad_uniques = [i for i, u in enumerate(uniques) if not isinstance(u, str)]
    if bad_uniques:
        bad_rows = np.union1d(bad_rows, np.flatnonzero(np.isin(codes, bad_uniques)))
    if bad_rows.size:
        shown = bad_rows[:5].tolist()
        raise DataValidationError(
            source,
            "every text must be a string (missing values are not encoded; fill them first)",
            rows=shown,
            values=[_show(arr[r]) for r in shown],
        )
    return uniques, codes.astype(np.int64, copy=False)


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """Hash each text to a 16-byte BLAKE2b digest: a ``uint8 [n, 16]`` array."""
    out = np.empty((len(texts), KEY_BYTES), dtype=np.uint8)
    if len(texts):
        buf = b"".join(
            hashlib.blake2b(t.encode("utf-8"), digest_size=KEY_BYTES).digest() for t in texts
        )
        out[:] = np.frombuffer(buf, dtype=np.uint8).reshape(len(texts), KEY_BYTES)
    return out


def _show(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) or value is None else repr(value)
