"""A persistent text -> embedding store, keyed by text and by the model that encoded it.

Layout on disk (no pickle anywhere)::

    <cache_dir>/<namespace_id>/meta.json                 what the namespace is, for humans
    <cache_dir>/<namespace_id>/part-<time>-<pid>-<rand>.safetensors

The *namespace* is everything that changes the vectors: model name or path, a
fingerprint of the weights, config and tokenizer, pooling, normalisation, max length and
which layer's output is stored. ``namespace_id`` is a hash of it, so a different model
or setting never reads another's vectors. Inside a namespace an entry is keyed by the
16-byte BLAKE2b digest of the text and holds a float array ``[n_i, dim]``: one row for a
pooled embedding, one row per token for the hidden states of a frozen bottom.

Each part file holds ``keys`` (``uint8 [n, 16]``), ``lengths`` (``int64 [n]``) and
``values`` (``[sum lengths, dim]``). New entries are appended as a new part, written to
a temporary file and renamed into place (:func:`ltr.io.atomic_path`), so concurrent runs
and interrupted runs never leave a half-written part; an entry present in two parts is
read from the first.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ltr.io import atomic_path, write_json
from ltr.text.hashing import KEY_BYTES

FORMAT_VERSION = 1


def namespace_id(namespace: Mapping[str, Any]) -> str:
    """Stable 20-hex-digit id of a namespace mapping (JSON, keys sorted)."""
    blob = json.dumps({"format": FORMAT_VERSION, **namespace}, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=10).hexdigest()


class EmbeddingStore:
    """Map text key -> ``float [n_i, dim]`` for one namespace, in memory and (optionally) on disk.

    Args:
        root: cache folder; ``None`` keeps the store in memory only.
        namespace: what produced the vectors (see the module docstring).
        dim: width of each row.
        dtype: storage dtype (float32 by default).
        info: extra fields written to ``meta.json`` for humans (e.g. the model's name);
            not part of the key.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        namespace: Mapping[str, Any],
        dim: int,
        dtype: np.dtype | type = np.float32,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.namespace = dict(namespace)
        self.info = dict(info or {})
        self.namespace_id = namespace_id(self.namespace)
        self.dim = int(dim)
        self.dtype = np.dtype(dtype)
        self.directory = Path(root) / self.namespace_id if root is not None else None
        self._index: dict[bytes, int] = {}
        self._blocks: list[np.ndarray] = []  # value blocks, concatenated lazily
        self._n_rows = 0
        self._starts: list[np.ndarray] = []  # per entry: first global row
        self._lengths: list[np.ndarray] = []  # per entry: number of rows
        self._keys: list[bytes] = []  # per entry, in position order
        self._values_cat: np.ndarray | None = None
        self._starts_cat: np.ndarray | None = None
        self._lengths_cat: np.ndarray | None = None
        self._n_flushed = 0
        self.parts_loaded = 0
        if self.directory is not None and self.directory.is_dir():
            self._load()

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Positions of ``keys`` (``uint8 [n, 16]``) in the store, -1 where absent."""
        index = self._index
        return np.fromiter(
            (index.get(k, -1) for k in _split_keys(keys)), dtype=np.int64, count=len(keys)
        )

    def lengths(self, positions: np.ndarray) -> np.ndarray:
        """Rows per entry at ``positions``."""
        self._consolidate()
        assert self._lengths_cat is not None
        return self._lengths_cat[np.asarray(positions, dtype=np.int64)]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values [rows, dim], starts [n], lengths [n])``: entry ``i`` is
        ``values[starts[i] : starts[i] + lengths[i]]``. Valid until the next :meth:`add`."""
        self._consolidate()
        assert (
            self._values_cat is not None
            and self._starts_cat is not None
            and self._lengths_cat is not None
        )
        return self._values_cat, self._starts_cat, self._lengths_cat

    def get_fixed(self, positions: np.ndarray) -> np.ndarray:
        """``[n, dim]`` values of single-row entries (pooled embeddings) at ``positions``."""
        self._consolidate()
        assert self._values_cat is not None and self._starts_cat is not None
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions < 0).any():
            raise KeyError("get_fixed: some positions are missing (-1)")
        if positions.size and (self._lengths_cat[positions] != 1).any():
            raise ValueError("get_fixed: entries hold more than one row; use get_ragged")
        return self._values_cat[self._starts_cat[positions]]

    def get_ragged(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values of entries at ``positions``, concatenated: ``([sum lengths, dim], lengths)``."""
        self._consolidate()
        assert self._values_cat is not None and self._starts_cat is not None
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions < 0).any():
            raise KeyError("get_ragged: some positions are missing (-1)")
        lens = self._lengths_cat[positions]
        return self._values_cat[_ragged_rows(self._starts_cat[positions], lens)], lens

    # ------------------------------------------------------------------ updates
    def add(
        self, keys: np.ndarray, values: np.ndarray, lengths: np.ndarray | None = None
    ) -> np.ndarray:
        """Add entries; keys already present keep their old values. Returns all positions.

        Args:
            keys: ``uint8 [n, 16]`` text keys.
            values: ``[sum lengths, dim]`` rows, entry after entry.
            lengths: rows per entry; ``None`` means one row each (``values`` is ``[n, dim]``).
        """
        keys = np.asarray(keys, dtype=np.uint8).reshape(-1, KEY_BYTES)
        n = len(keys)
        lengths = (
            np.ones(n, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
        )
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise ValueError(f"values must be [rows, {self.dim}], got {values.shape}")
        if lengths.shape != (n,) or int(lengths.sum()) != len(values) or (lengths < 1).any():
            raise ValueError("lengths must be >= 1, one per key, summing to the rows of values")
        key_list = _split_keys(keys)
        positions = np.empty(n, dtype=np.int64)
        new: list[int] = []
        for i, k in enumerate(key_list):
            pos = self._index.get(k)
            if pos is None:
                pos = len(self._keys)
                self._index[k] = pos
                self._keys.append(k)
                new.append(i)
            positions[i] = pos
        if new:
            new_idx = np.asarray(new, dtype=np.int64)
            starts_in_values = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            new_lens = lengths[new_idx]
            if len(new) == n:
                block = values.astype(self.dtype, copy=False)
            else:
                block = values[_ragged_rows(starts_in_values[new_idx], new_lens)].astype(
                    self.dtype, copy=False
                )
            self._append(block, new_lens)
        return positions

    def flush(self) -> Path | None:
        """Write entries added since the last flush as a new part file; return its path."""
        n_new = len(self._keys) - self._n_flushed
        if self.directory is None or n_new == 0:
            self._n_flushed = len(self._keys)
            return None
        from safetensors.numpy import save_file

        positions = np.arange(self._n_flushed, len(self._keys), dtype=np.int64)
        values, lens = self.get_ragged(positions)
        keys = np.frombuffer(b"".join(self._keys[self._n_flushed :]), dtype=np.uint8).reshape(
            -1, KEY_BYTES
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self.directory / "meta.json"
        if not meta_path.exists():
            write_json(
                {
                    "format": FORMAT_VERSION,
                    "dim": self.dim,
                    "dtype": str(self.dtype),
                    **self.info,
                    **self.namespace,
                },
                meta_path,
            )
        name = f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.safetensors"
        path = self.directory / name
        with atomic_path(path) as tmp:
            save_file(
                {
                    "keys": np.ascontiguousarray(keys),
                    "lengths": lens,
                    "values": np.ascontiguousarray(values),
                },
                str(tmp),
                metadata={"namespace_id": self.namespace_id, "format": str(FORMAT_VERSION)},
            )
        self._n_flushed = len(self._keys)
        return path

    def compact(self) -> Path | None:
        """Rewrite every entry into one part file and remove the parts this store had read."""
        if self.directory is None:
            return None
        old = sorted(self.directory.glob("part-*.safetensors"))
        self._n_flushed = 0
        path = self.flush()
        for p in old:
            if p != path:
                p.unlink(missing_ok=True)
        return path

    # ------------------------------------------------------------------ internals
    def _append(self, block: np.ndarray, lengths: np.ndarray) -> None:
        starts = self._n_rows + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self._blocks.append(block)
        self._starts.append(starts)
        self._lengths.append(lengths.astype(np.int64, copy=False))
        self._n_rows += len(block)
        self._values_cat = self._starts_cat = self._lengths_cat = None

    def _consolidate(self) -> None:
        if self._values_cat is not None:
            return
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
            self._starts = [np.concatenate(self._starts)]
            self._lengths = [np.concatenate(self._lengths)]
        if self._blocks:
            self._values_cat, self._starts_cat, self._lengths_cat = (
                self._blocks[0],
                self._starts[0],
                self._lengths[0],
            )
        else:
            self._values_cat = np.zeros((0, self.dim), dtype=self.dtype)
            self._starts_cat = np.zeros(0, dtype=np.int64)
            self._lengths_cat = np.zeros(0, dtype=np.int64)

    def _load(self) -> None:
        from safetensors.numpy import load_file

        assert self.directory is not None
        for path in sorted(self.directory.glob("part-*.safetensors")):
            try:
                part = load_file(str(path))
                keys, lens, values = part["keys"], part["lengths"], part["values"]
                ok = (
                    keys.ndim == 2
                    and keys.shape[1] == KEY_BYTES
                    and lens.shape == (len(keys),)
                    and values.ndim == 2
                    and values.shape[1] == self.dim
                    and int(lens.sum()) == len(values)
                )
            except Exception as exc:  # a damaged cache file is skipped, never fatal
                warnings.warn(f"embedding cache: skipping unreadable {path}: {exc}", stacklevel=2)
                continue
            if not ok:
                warnings.warn(f"embedding cache: skipping {path}: unexpected shapes", stacklevel=2)
                continue
            self.add(keys, values, lens)
            self.parts_loaded += 1
        self._n_flushed = len(self._keys)


def _split_keys(keys: np.ndarray) -> list[bytes]:
    buf = np.ascontiguousarray(keys, dtype=np.uint8).tobytes()
    return [buf[i : i + KEY_BYTES] for i in range(0, len(buf), KEY_BYTES)]


def _ragged_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Row indices ``[s_0, .., s_0+l_0-1, s_1, ...]`` for entries with given starts/lengths."""
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)
