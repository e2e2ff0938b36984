"""Hostile model packages: a copy of a packaged model changed in one way each. The
service must refuse it before loading anything, naming the file (or manifest field)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ltr.serving import RankingService
from ltr.serving.manifest import KEY_ENV, canonical, sign_package
from tests.robustness.harness import Case, expect_outcome, params


def package_case(id: str, what: str, damage: Callable[[Path], Any], names: tuple[str, ...],
                 expect: str = "error", kind: str = "xgboost",
                 key: str | None = None) -> Case:
    """``damage(folder)`` changes a copy of the ``kind`` package; then it is loaded (with
    ``LTR_PACKAGE_KEY=key`` when given)."""
    def run(packages: dict[str, Any], tmp: Path, monkeypatch: Any) -> None:
        folder = Path(shutil.copytree(packages[kind][1], tmp / "pkg"))
        damage(folder)
        if key is None:
            monkeypatch.delenv(KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(KEY_ENV, key)
        service = expect_outcome(case, lambda: RankingService(folder))
        if expect == "accepted":
            assert service.health()["status"] == "ok"
    case = Case(id, "package", what, expect, names, run)
    return case


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def _edit(edit: Callable[[dict[str, Any]], Any], reseal: bool) -> Callable[[Path], None]:
    """Edit the manifest; ``reseal``: recompute its digest as someone who read the format
    would (the file checks, the model checks or the signature must still catch it)."""
    def damage(folder: Path) -> None:
        m = _manifest(folder)
        edit(m)
        if reseal:
            m.pop("signature", None)
            m["digest"] = hashlib.sha256(canonical(m)).hexdigest()
        (folder / "manifest.json").write_text(json.dumps(m))
    return damage


def _flip_byte(rel: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = bytearray((folder / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / rel).write_bytes(bytes(data))
    return damage


def _then(*steps: Callable[[Path], Any]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        for step in steps:
            step(folder)
    return damage


def _symlink(rel: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        target = folder.parent / "elsewhere"
        shutil.move(folder / rel, target)
        (folder / rel).symlink_to(target)
    return damage


def _resign(key: str) -> Callable[[Path], None]:
    return lambda folder: sign_package(folder, key=key)


WEIGHTS = "model/model.json"  # the XGBoost package's trees

CASES = [
    package_case("package-intact", "an untouched package", lambda f: None, (),
                 expect="accepted"),
    package_case("package-weights-edited", "one byte of the weights changed",
                 _flip_byte(WEIGHTS), ("model.json", "changed")),
    package_case("package-weights-truncated", "the weights file cut short",
                 lambda f: (f / WEIGHTS).write_bytes((f / WEIGHTS).read_bytes()[:100]),
                 ("model.json",)),
    package_case("package-file-deleted", "the catalog file removed",
                 lambda f: (f / "catalog" / "products.parquet").unlink(),
                 ("products.parquet", "missing")),
    package_case("package-file-added", "an extra file dropped into model/",
                 lambda f: (f / "model" / "patch.json").write_text("{}"),
                 ("patch.json", "not listed")),
    package_case("package-entry-dropped-file-edited", "the weights' manifest entry deleted, "
                 "then the weights edited", _then(_edit(lambda m: m["files"].pop(WEIGHTS),
                                                        False), _flip_byte(WEIGHTS)),
                 ("manifest.json", "digest")),
    package_case("package-entry-dropped-resealed", "the same, with the manifest digest "
                 "recomputed", _then(_edit(lambda m: m["files"].pop(WEIGHTS), True),
                                     _flip_byte(WEIGHTS)), ("model.json", "not listed")),
    package_case("package-kind-edited", "manifest kind changed to mmoe",
                 _edit(lambda m: m.update(kind="mmoe"), False), ("manifest.json", "digest")),
    package_case("package-kind-edited-resealed", "manifest kind changed, digest recomputed",
                 _edit(lambda m: m.update(kind="mmoe"), True), ("kind", "'xgboost'")),
    package_case("package-outputs-edited-resealed", "manifest outputs changed, digest "
                 "recomputed", _edit(lambda m: m.update(outputs=["click"]), True),
                 ("outputs",)),
    package_case("package-manifest-not-json", "manifest.json holding garbage",
                 lambda f: (f / "manifest.json").write_text("{oops"), ("manifest.json",)),
    package_case("package-manifest-missing", "manifest.json removed",
                 lambda f: (f / "manifest.json").unlink(), ("manifest.json",)),
    package_case("package-old-format", "a package of format version 1",
                 _edit(lambda m: m.update(format_version=1), True),
                 ("format version 1", "re-export")),
    package_case("package-path-escape", "a manifest entry '../../etc/passwd'",
                 _edit(lambda m: m["files"].update({"../../etc/passwd": {"sha256": "0",
                                                                          "bytes": 0}}), True),
                 ("outside the package",)),
    package_case("package-symlink", "features.json replaced by a symbolic link",
                 _symlink("features.json"), ("features.json", "symbolic link")),
    package_case("package-not-a-folder", "a file given as the package",
                 lambda f: (shutil.rmtree(f), f.write_text("x")), ("pkg",)),
    package_case("package-unsigned-with-key", "an unsigned package, LTR_PACKAGE_KEY set",
                 lambda f: None, ("manifest.json", "not signed"), key="s3cret"),
    package_case("package-other-key", "signed with another key",
                 _resign("other"), ("signature does not match",), key="s3cret"),
    package_case("package-signed", "signed with the service's key", _resign("s3cret"), (),
                 expect="accepted", key="s3cret"),
    package_case("package-signed-then-edited", "signed, then the creation time edited and "
                 "the digest recomputed", _then(_resign("s3cret"), _edit(
                     lambda m: m.update(created="2000-01-01T00:00:00Z"), False),
                     lambda f: None),
                 ("manifest.json", "digest"), key="s3cret"),
    package_case("package-encoder-weights-swapped", "the copied text encoder's weights "
                 "changed and the manifest resealed", _then(
                     _flip_byte("text/encoder/model.safetensors"),
                     _edit(lambda m: m["files"].pop("text/encoder/model.safetensors"), True),
                     lambda f: _reseal_files(f)), ("fingerprint",), kind="cosine"),
]


def _reseal_files(folder: Path) -> None:
    """Rewrite the whole manifest over the files as they are now (a forger's full reseal:
    only checks inside the model files can catch it)."""
    from ltr.serving.manifest import write_manifest

    write_manifest(folder, _manifest(folder), key=None)


@pytest.mark.parametrize("case", params(CASES))
def test_package(case: Case, packages: dict[str, Any], tmp_path: Path,
                 monkeypatch: Any) -> None:
    case.run(packages, tmp_path, monkeypatch)
