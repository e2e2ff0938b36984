"""The package manifest: what a model package holds, and proof that it is unchanged.

``manifest.json`` is written last by :func:`ltr.serving.export_package`. Besides what the
package is (kind, tasks, versions, creation time) it lists every other file with its
size and SHA-256, and carries three seals:

* ``files``: :func:`verify_package` recomputes every listed file's size and SHA-256
  before anything is loaded; a file that is missing or whose bytes changed is refused,
  naming the file. A file in the folder that the manifest does not list is refused too
  (so deleting a weight file's entry and then editing the file does not slip through),
  as is a symbolic link.
* ``digest``: the SHA-256 of the manifest's own canonical JSON (sorted keys, without
  ``digest`` and ``signature``). An edited manifest (another ``kind``, a dropped file
  entry) no longer matches it. It catches accidents and careless edits, not an attacker,
  who can recompute it; that is what the signature is for.
* ``signature`` (optional): HMAC-SHA256 of the same canonical JSON under a secret key,

  .. math:: \\mathrm{sig} = \\mathrm{HMAC}_{\\mathrm{SHA256}}(K, \\mathrm{canonical}(M)),

  written when ``LTR_PACKAGE_KEY`` is set at export (or ``key=`` is given). A service
  started with ``LTR_PACKAGE_KEY`` set refuses every package that is unsigned or signed
  with another key; since the manifest lists every file's SHA-256, the signature covers
  every byte of the package.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from ltr.errors import DataValidationError
from ltr.io import read_json, write_json

MANIFEST = "manifest.json"
PACKAGE_FORMAT = "ltr-model-package"
PACKAGE_VERSION = 2  # 2: manifest digest, optional signature, unlisted files refused
KEY_ENV = "LTR_PACKAGE_KEY"
SIGNATURE_ALGORITHM = "HMAC-SHA256"
SEALS = ("digest", "signature")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_files(folder: Path) -> list[str]:
    """Every file or link under ``folder`` except the manifest, as sorted POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.relative_to(folder).as_posix()
                  != MANIFEST)


def package_key(key: str | bytes | None = None) -> bytes | None:
    """The signing key: ``key`` if given, else ``$LTR_PACKAGE_KEY`` (None when unset or
    empty)."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
    if key is None:
        return None
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def canonical(manifest: dict[str, Any]) -> bytes:
    """The manifest's bytes that the digest and signature cover (seals left out)."""
    body = {k: v for k, v in manifest.items() if k not in SEALS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode("ascii")


def sign(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


def write_manifest(folder: str | Path, info: dict[str, Any],
                   key: str | bytes | None = None) -> Path:
    """Hash every file of ``folder`` and write ``manifest.json`` with ``info``, its digest
    and, with a key (``key`` or ``$LTR_PACKAGE_KEY``), its signature."""
    folder = Path(folder)
    files = {rel: {"sha256": sha256_file(folder / rel), "bytes": (folder / rel).stat().st_size}
             for rel in package_files(folder)}
    info = {k: v for k, v in info.items() if k not in ("format", "format_version", "files",
                                                        *SEALS)}
    manifest = {"format": PACKAGE_FORMAT, "format_version": PACKAGE_VERSION, **info,
                "files": files}
    manifest["digest"] = hashlib.sha256(canonical(manifest)).hexdigest()
    secret = package_key(key)
    if secret is not None:
        manifest["signature"] = {"algorithm": SIGNATURE_ALGORITHM,
                                 "value": sign(manifest, secret)}
    return write_json(manifest, folder / MANIFEST)


def sign_package(folder: str | Path, key: str | bytes | None = None) -> Path:
    """(Re-)sign a package that verifies as it is (every file, the digest) with ``key``
    (default ``$LTR_PACKAGE_KEY``)."""
    secret = package_key(key)
    if secret is None:
        raise DataValidationError(str(folder), f"no signing key: set {KEY_ENV} or pass key=")
    manifest = verify_package(folder, key=False)
    return write_manifest(folder, manifest, key=secret)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a package folder, checked for format and its own digest (not yet
    the files or the signature)."""
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
                                  f"(exported by ltr {manifest.get('versions', {}).get('ltr')}); "
                                  "re-export the model with this ltr",
                                  column="format_version")
    if not isinstance(manifest.get("files"), dict):
        raise DataValidationError(str(path), "lists no files", column="files")
    digest = manifest.get("digest")
    if not isinstance(digest, str) or not hmac.compare_digest(
            digest, hashlib.sha256(canonical(manifest)).hexdigest()):
        raise DataValidationError(str(path), "has been edited since the package was "
                                  "exported (its digest does not match its contents); "
                                  "re-export the model or restore the manifest",
                                  column="digest")
    return manifest


def check_signature(manifest: dict[str, Any], path: Path, key: bytes) -> None:
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or "value" not in sig:
        raise DataValidationError(str(path), f"is not signed, and {KEY_ENV} is set: this "
                                  "service loads only packages signed with its key (export "
                                  f"with {KEY_ENV} set, or ltr.serving.sign_package)",
                                  column="signature")
    if sig.get("algorithm") != SIGNATURE_ALGORITHM:
        raise DataValidationError(str(path), f"signature algorithm {sig.get('algorithm')!r} "
                                  f"is not {SIGNATURE_ALGORITHM}", column="signature")
    if not isinstance(sig["value"], str) or not hmac.compare_digest(sig["value"],
                                                                     sign(manifest, key)):
        raise DataValidationError(str(path), f"signature does not match {KEY_ENV}: the "
                                  "package was signed with another key or changed after "
                                  "signing", column="signature")


def verify_package(folder: str | Path, key: str | bytes | bool | None = None
                   ) -> dict[str, Any]:
    """Read the manifest, check its digest, its signature when a key is set (``key``, or
    ``$LTR_PACKAGE_KEY`` when ``key`` is None; ``key=False`` skips it), and every file.

    Raises:
        DataValidationError: naming the manifest (edited, unsigned, wrong signature) or
            the first file that is missing, changed, unlisted, a link, or whose listed
            path would leave the package folder.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    secret = None if key is False else package_key(None if key is True else key)
    if key is True and secret is None:
        raise DataValidationError(str(folder), f"a signature check was asked for but "
                                  f"{KEY_ENV} is not set")
    if secret is not None:
        check_signature(manifest, folder / MANIFEST, secret)
    listed = manifest["files"]
    for rel in package_files(folder):
        if rel not in listed:
            raise DataValidationError(str(folder / rel), "is not listed in the package "
                                      "manifest: a package holds only the files it was "
                                      "exported with (remove it, or re-export)")
    for rel, entry in listed.items():
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not isinstance(entry, dict):
            raise DataValidationError(str(folder / MANIFEST), f"lists a path outside the "
                                      f"package or without its size and hash: {rel!r}",
                                      column="files")
        path = folder / rel
        if path.is_symlink():
            raise DataValidationError(str(path), "is a symbolic link; a package holds "
                                      "only regular files")
        if not path.is_file():
            raise DataValidationError(str(path), "is listed in the package manifest but "
                                      "missing")
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise DataValidationError(str(path), "has changed since the package was exported "
                                      "(its SHA-256 differs from the manifest); re-export "
                                      "the model or restore the file")
    return manifest
