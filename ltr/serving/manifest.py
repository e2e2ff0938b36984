"""The package manifest: what a model package holds, and proof that it is unchanged.

``manifest.json`` is written last by :func:`ltr.serving.export_package`. Besides what the
package is (kind, tasks, versions, creation time) it lists every other file with its
size and SHA-256. :func:`verify_package` recomputes them before anything is loaded: a
file that is missing or whose bytes changed is refused, naming the file. Files not listed
are never read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from ltr.errors import DataValidationError
from ltr.io import read_json, write_json

MANIFEST = "manifest.json"
PACKAGE_FORMAT = "ltr-model-package"
PACKAGE_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` except the manifest, as sorted POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: str | Path, info: dict[str, Any]) -> Path:
    """Hash every file of ``folder`` and write ``manifest.json`` with ``info``."""
    folder = Path(folder)
    files = {rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
             for rel in package_files(folder)}
    return write_json({"format": PACKAGE_FORMAT, "format_version": PACKAGE_VERSION, **info,
                       "files": files}, folder / MANIFEST)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a package folder, checked for format (not yet the files)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise DataValidationError(str(folder), "is not a folder (expected a model package "
                                  "written by `ltr export`)")
    if not path.is_file():
        raise DataValidationError(str(folder), f"is not a model package (no {MANIFEST})")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
        raise DataValidationError(str(path), f"is not an ltr model package manifest (format "
                                  f"{manifest.get('format') if isinstance(manifest, dict) else None!r})",
                                  column="format")
    if manifest.get("format_version") != PACKAGE_VERSION:
        raise DataValidationError(str(path), f"package format version "
                                  f"{manifest.get('format_version')!r} is not {PACKAGE_VERSION} "
                                  f"(exported by ltr {manifest.get('versions', {}).get('ltr')})",
                                  column="format_version")
    if not isinstance(manifest.get("files"), dict):
        raise DataValidationError(str(path), "lists no files", column="files")
    return manifest


def verify_package(folder: str | Path) -> dict[str, Any]:
    """Read the manifest and check every listed file's size and SHA-256.

    Raises:
        DataValidationError: naming the first file that is missing, changed, or whose
            listed path would leave the package folder.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    for rel, entry in manifest["files"].items():
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            raise DataValidationError(str(folder / MANIFEST), f"lists a path outside the "
                                      f"package: {rel!r}", column="files")
        path = folder / rel
        if not path.is_file():
            raise DataValidationError(str(path), "is listed in the package manifest but "
                                      "missing")
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise DataValidationError(str(path), "has changed since the package was exported "
                                      "(its SHA-256 differs from the manifest); re-export "
                                      "the model or restore the file")
    return manifest
