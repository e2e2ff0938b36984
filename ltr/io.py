"""Reading and writing tables and files safely.

Reads accept CSV/TSV or Parquet and turn any parser failure into a
:class:`~ltr.errors.DataValidationError` naming the file. Writes go to a temporary file in
the same folder and are renamed into place, so an interrupted or failed write never
leaves a half-written file and never destroys the previous version; a command's whole
output set is written the same way through :func:`atomic_dir`. Temporaries name their
process, so those of a killed run are removed by the next write of the same path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ltr.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".txt")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into a DataFrame.

    Raises:
        DataValidationError: the file is missing, has an unknown suffix or cannot be parsed.
    """
    import pandas as pd

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
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary is named ``.<name>.<pid>-<host>.<random>.tmp``; temporaries of ``path``
    left by processes of this host that are no longer alive are removed first
    (:func:`remove_stale`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp_path = _new_temporary(path, folder=False)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # a writer may have re-created it
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, owner: str | None = None,
               main_files: Sequence[str] = (), key: str = "out") -> Iterator[Path]:
    """Yield a temporary folder beside ``path``. On success it becomes ``path``; on
    failure it is removed and ``path`` is left as it was: an output set appears whole or
    not at all.

    An existing folder at ``path`` is swapped with the new one in one atomic step where
    the file system can (Linux ``renameat2(RENAME_EXCHANGE)``), else moved aside just
    before the new one is renamed in (a crash between the two renames leaves it as
    ``.<name>.<pid>-<host>.<random>.old``, put back by the next :func:`remove_stale` of
    ``path``); the old folder is deleted only once the new one is in place. Stale
    temporaries of ``path`` are removed first (:func:`remove_stale`).

    ``owner``: the command whose output set this is (e.g. ``"label"``). Then an existing
    ``path`` must be empty or an earlier output of that command (its marker file
    :data:`OUTPUT_MARKER`; for sets written before markers: nothing but ``main_files``,
    the names the command writes in its folder, see :func:`check_output_dir`):
    anything else raises :class:`~ltr.errors.ConfigError` naming ``key`` before the
    caller does any work; and the marker is written into the new set."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    if owner is not None:
        check_output_dir(path, owner, main_files, key)
    tmp = _new_temporary(path, folder=True)
    try:
        yield tmp
        if owner is not None:
            _write_marker(tmp, owner)
        fault_point("before-rename", path.name)
        if owner is not None:  # the folder may have changed during the work
            check_output_dir(path, owner, main_files, key)
        _put_in_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


OUTPUT_MARKER = ".ltr-output.json"
"""The file in every output set of ``ltr label``, ``ltr benchmark`` and the sweep export
that names the command which wrote it (``{"command": ..., "ltr_version": ...,
"created": ...}``); a folder is replaced wholesale only when it holds this command's."""


def check_output_dir(path: str | os.PathLike[str], owner: str, main_files: Sequence[str] = (),
                     key: str = "out") -> None:
    """Refuse to let ``ltr <owner>`` replace ``path`` unless it is absent, an empty folder
    or an earlier output set of the same command: it holds :data:`OUTPUT_MARKER` naming
    ``owner``, or (a set written before markers) some of ``main_files``, the names the
    command writes in its folder, and nothing else but hidden temporaries.

    Raises:
        ConfigError: naming ``key`` and the folder.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise ConfigError(key, f"{path} exists and is not a folder; `ltr {owner}` writes "
                          "a folder there")
    marker = path / OUTPUT_MARKER
    if marker.exists():
        try:
            command = json.loads(marker.read_text()).get("command")
        except (OSError, ValueError, AttributeError):
            command = None
        if command == owner:
            return
        raise ConfigError(key, f"{path} holds the output of `ltr {command}` ({marker}), "
                          f"not of `ltr {owner}`, and would be replaced wholesale; choose "
                          "another folder")
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise ConfigError(key, f"{path} cannot be read: {exc}") from exc
    foreign = sorted(n for n in names if n not in main_files
                     and not (n.startswith(".") and n.endswith(".tmp")))
    if not foreign:
        return
    shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
    raise ConfigError(key, f"{path} is a non-empty folder that is not an output of "
                      f"`ltr {owner}` (no {OUTPUT_MARKER}; holds {shown}); it would be "
                      "replaced wholesale with everything in it: choose another folder, or "
                      "move its files away")


def _write_marker(folder: Path, owner: str) -> None:
    import time

    from ltr import __version__

    write_json({"command": owner, "ltr_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
               folder / OUTPUT_MARKER)


def _put_in_place(tmp: Path, path: Path) -> None:
    """Rename the finished folder ``tmp`` onto ``path``, replacing what is there."""
    if not os.path.lexists(path):
        try:
            os.rename(tmp, path)
            return
        except OSError:
            if not os.path.lexists(path):
                raise  # else another process put a folder there meanwhile: replace it
    if _exchange(tmp, path):  # atomic: readers see the old set or the new one
        fault_point("old-aside", path.name)
        shutil.rmtree(tmp, ignore_errors=True)  # the old set, under the temporary name
        return
    old = _temporary_name(path, "old")
    os.replace(path, old)
    fault_point("old-aside", path.name)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------- temporaries
def _host() -> str:
    import socket

    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "host"


def _temporary_name(path: Path, kind: str) -> Path:
    """``.<name>.<pid>-<host>.<8 hex>.<kind>`` beside ``path``: its owner can be told."""
    return path.with_name(f".{path.name}.{os.getpid()}-{_host()}.{secrets.token_hex(4)}.{kind}")


def _new_temporary(path: Path, *, folder: bool) -> Path:
    for _ in range(100):
        tmp = _temporary_name(path, "tmp")
        try:
            if folder:
                os.mkdir(tmp)  # 0777 less the umask
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _temporary_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)-(?P<host>[A-Za-z0-9.-]+)"
                      rf"\.[0-9a-f]{{8}}\.(?P<kind>tmp|old)|old-(?P<legacy_pid>\d+))$")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (when unsure: yes)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries of ``path`` (see :func:`atomic_dir`) left by processes of
    this host that are no longer alive; return them. A moved-aside old folder is put back
    at ``path`` when ``path`` is missing (a crash between the two renames), else removed.
    Temporaries of live processes, of other hosts, and names of another pattern are left
    alone."""
    path = Path(path)
    pattern = _temporary_pattern(path.name)
    try:
        names = [e.name for e in os.scandir(path.parent)]
    except OSError:
        return []
    host = _host()
    stale: list[tuple[str, Path]] = []
    for name in names:
        m = pattern.match(name)
        if m is None:
            continue
        if m["legacy_pid"] is not None:
            kind, pid = "old", int(m["legacy_pid"])
        elif m["host"] != host:
            continue
        else:
            kind, pid = m["kind"], int(m["pid"])
        if not _alive(pid):
            stale.append((kind, path.parent / name))
    olds = sorted((p for kind, p in stale if kind == "old"),
                  key=lambda p: _mtime(p), reverse=True)
    if olds and not os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.rename(olds[0], path)  # the previous set, back in place
    removed = []
    for _, p in stale:
        if not os.path.lexists(p):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


_RENAMEAT2: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the platform or the file system cannot."""
    global _RENAMEAT2
    if not sys.platform.startswith("linux") or os.environ.get("LTR_NO_EXCHANGE"):
        return False
    if _RENAMEAT2 is None:
        import ctypes

        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
            fn.restype = ctypes.c_int
            _RENAMEAT2 = fn
        except (OSError, AttributeError):  # glibc < 2.28, musl
            _RENAMEAT2 = False
    if _RENAMEAT2 is False:
        return False
    import ctypes

    at_fdcwd, rename_exchange = -100, 2
    if _RENAMEAT2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False  # e.g. a file system without RENAME_EXCHANGE
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def fault_point(point: str, name: str = "") -> None:
    """Test hook: SIGKILL this process here when ``$LTR_KILL_AT`` is ``point`` or
    ``point:name``. Points: ``before-rename`` and ``old-aside`` (:func:`atomic_dir`, name:
    the folder's name), ``between-files`` (between two files of an output set, name: the
    command)."""
    want = os.environ.get("LTR_KILL_AT")
    if want and want in (point, f"{point}:{name}"):
        import signal

        sys.stdout.flush()
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


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
