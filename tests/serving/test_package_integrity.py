"""Packages that cannot be quietly changed: unlisted files, an edited manifest (its
digest), a relabelled model (kind, outputs against the model files) and the optional
HMAC-SHA256 signature (``LTR_PACKAGE_KEY``)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from ltr.errors import DataValidationError
from ltr.serving import RankingService, sign_package, verify_package
from ltr.serving.manifest import KEY_ENV, canonical


def _copy(packages, tmp_path, kind: str = "xgboost"):
    return shutil.copytree(packages[kind][1], tmp_path / "pkg")


def _rewrite(folder, edit) -> None:
    """Edit the manifest and recompute its digest, as someone who read the format would."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    manifest.pop("signature", None)
    manifest["digest"] = hashlib.sha256(canonical(manifest)).hexdigest()
    path.write_text(json.dumps(manifest))


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_unlisted_file_is_refused_by_name(packages, tmp_path):
    folder = _copy(packages, tmp_path)
    (folder / "model" / "extra.json").write_text("{}")
    with pytest.raises(DataValidationError, match=r"extra\.json.*not listed"):
        RankingService(folder)


def test_dropped_entry_then_edited_weights_is_refused(packages, tmp_path):
    """The issue's case: the weight file's entry deleted from the manifest, then the
    file edited. A plain edit breaks the digest; with the digest recomputed the file is
    unlisted."""
    folder = _copy(packages, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["model/model.json"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    model = folder / "model" / "model.json"
    model.write_bytes(model.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(DataValidationError, match=r"manifest\.json.*edited.*digest"):
        RankingService(folder)
    _rewrite(folder, lambda m: m["files"].pop("model/model.json", None))
    with pytest.raises(DataValidationError, match=r"model\.json.*not listed"):
        RankingService(folder)


def test_manifest_cannot_relabel_the_model(packages, tmp_path):
    folder = _copy(packages, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["kind"] = "mmoe"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataValidationError, match="digest"):
        RankingService(folder)
    _rewrite(folder, lambda m: m.update(kind="mmoe"))
    with pytest.raises(DataValidationError, match=r"kind 'mmoe'.*'xgboost'"):
        RankingService(folder)
    _rewrite(folder, lambda m: m.update(kind="xgboost", outputs=["click", "relevance"]))
    with pytest.raises(DataValidationError, match="outputs"):
        RankingService(folder)


def test_symlink_and_path_escape_are_refused(packages, tmp_path):
    folder = _copy(packages, tmp_path)
    target = folder / "features.json"
    moved = tmp_path / "features.json"
    shutil.move(target, moved)
    target.symlink_to(moved)
    with pytest.raises(DataValidationError, match=r"features\.json.*symbolic link"):
        verify_package(folder)
    shutil.move(moved, target.with_suffix(".tmp"))
    target.unlink()
    shutil.move(target.with_suffix(".tmp"), target)
    _rewrite(folder, lambda m: m["files"].update({"../outside.txt": {"sha256": "0",
                                                                     "bytes": 0}}))
    with pytest.raises(DataValidationError, match="outside the package"):
        verify_package(folder)


def test_older_format_is_refused_with_a_reason(packages, tmp_path):
    folder = _copy(packages, tmp_path)
    _rewrite(folder, lambda m: m.update(format_version=1))
    with pytest.raises(DataValidationError, match="format version 1.*re-export"):
        RankingService(folder)


def test_signing_key_makes_the_service_refuse_other_packages(packages, tmp_path,
                                                             monkeypatch):
    folder = _copy(packages, tmp_path)
    assert verify_package(folder)  # unsigned packages load when no key is set
    monkeypatch.setenv(KEY_ENV, "service-secret")
    with pytest.raises(DataValidationError, match=r"manifest\.json.*not signed"):
        RankingService(folder)
    sign_package(folder, key="another-secret")
    with pytest.raises(DataValidationError, match="signature does not match"):
        RankingService(folder)
    sign_package(folder)  # with $LTR_PACKAGE_KEY
    service = RankingService(folder)
    assert service.health()["signed"] is True
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["signature"]["algorithm"] == "HMAC-SHA256"
    # changed after signing, even with the digest recomputed: refused
    sig = manifest["signature"]
    _rewrite(folder, lambda m: m.update(created="2000-01-01T00:00:00Z"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["signature"] = sig
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataValidationError, match="signature does not match"):
        RankingService(folder)
    monkeypatch.delenv(KEY_ENV)
    assert RankingService(folder).health()["signed"] is True  # no key: not checked


def test_sign_package_needs_a_key(packages, tmp_path):
    folder = _copy(packages, tmp_path)
    with pytest.raises(DataValidationError, match=KEY_ENV):
        sign_package(folder)
