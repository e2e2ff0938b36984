"""Reading and writing tables and files safely.

Reads accept CSV/TSV or Parquet and turn any parser failure into a
:class:`~ltr.errors.DataValidationError` naming the file. Writes go to a temporary file in
the same folder and are renamed into place, so an interrupted or failed write never
leaves a half-written file and never destroys the previous version.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ltr.errors import DataValidationError

TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".txt")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into a DataFrame.

    Raises:
        DataValidationError: the file is missing, has an unknown suffix or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(str(path), "file does not exist")
    if not path.is_file():
        raise DataValidationError(str(path), "is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "," if suffix == ".csv" else "\t"
            return pd.read_csv(path, sep=sep, keep_default_na=True)
    except Exception as exc:  # parser errors come in many types; name the file
        raise DataValidationError(
            str(path), f"cannot be read as {suffix[1:]}: {type(exc).__name__}: {exc}"
        ) from exc
    raise DataValidationError(
        str(path), f"unknown file type '{suffix}'; expected one of {', '.join(TABLE_SUFFIXES)}"
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``. On success it becomes ``path`` (an
    existing folder there is removed only once the new one is in place); on failure it
    is removed and ``path`` is left as it was: an output set appears whole or not at all."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders
        if not path.exists():
            os.replace(tmp, path)
            return
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file.

    Raises:
        DataValidationError: naming the file, when it cannot be read or parsed.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataValidationError(str(path), f"cannot be read as JSON: {exc}") from exc


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically as Parquet (zstd) or CSV/TSV, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False, compression="zstd")
        elif suffix in (".csv", ".tsv", ".txt"):
            df.to_csv(tmp, index=False, sep="," if suffix == ".csv" else "\t")
        else:
            raise ValueError(f"{path}: unknown table suffix '{suffix}'")
    return path


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
