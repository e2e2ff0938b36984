"""A tiny, randomly initialised BERT and WordPiece tokenizer, built offline into a tmp dir.

Tests load it through the local-directory path of ``ltr.text.loading``, as a user's
``text.model_name: /path/to/model`` would; nothing is downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a stray hub lookup fails fast instead of hanging
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("transformers")

WORDS = [
    "oak",
    "dining",
    "table",
    "chair",
    "red",
    "blue",
    "green",
    "sofa",
    "lamp",
    "desk",
    "wooden",
    "metal",
    "black",
    "white",
    "large",
    "small",
    "kitchen",
    "bed",
    "frame",
    "rug",
    "modern",
    "rustic",
    "velvet",
    "storage",
    "outdoor",
    "patio",
    "set",
    "of",
    "two",
    "with",
    "and",
    "for",
]
N_LAYERS = 4
HIDDEN = 32


def build_tiny_bert(directory: Path, seed: int = 0, n_layers: int = N_LAYERS) -> Path:
    """Write a random 4-layer, 32-wide BERT and its tokenizer to ``directory``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *letters,
        *("##" + c for c in letters),
    ]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(
        str(directory / "vocab.txt")
    )  # positional: vocab file in v4 and v5
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture
def make_encoder(tiny_bert_dir: Path):
    """Factory: ``make_encoder(**settings)`` -> a fresh :class:`TextEncoder` on the tiny BERT."""
    from ltr.text import TextEncoder

    def make(**kwargs):
        kwargs.setdefault("progress", False)
        kwargs.setdefault("max_length", 32)
        return TextEncoder.from_pretrained(str(tiny_bert_dir), **kwargs)

    return make


@pytest.fixture
def texts() -> list[str]:
    return [
        "oak dining table",
        "red velvet sofa with storage",
        "lamp",
        "modern rustic outdoor patio set of two chairs and a table",
        "black metal bed frame",
        "zebra",  # out of vocabulary: [UNK] pieces
    ]


class ForwardCounter:
    """Counts texts (batch rows) that pass through a module's forward."""

    def __init__(self, module) -> None:
        self.texts = 0
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        out = output[0] if isinstance(output, tuple) else output
        self.calls += 1
        self.texts += int(out.shape[0])

    def remove(self) -> None:
        self._handle.remove()


@pytest.fixture
def count_forward():
    """``count_forward(module)`` -> a :class:`ForwardCounter` hooked on ``module``."""
    counters: list[ForwardCounter] = []

    def make(module) -> ForwardCounter:
        counters.append(ForwardCounter(module))
        return counters[-1]

    yield make
    for c in counters:
        c.remove()
