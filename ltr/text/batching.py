"""Tokenising unique texts and cutting them into length-sorted, padded batches.

Sorting by token length before batching means each batch pads only to its own longest
text, which is most of the speed of encoding short, uneven product-search texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (special tokens added, truncated to ``max_length``), unpadded."""
    if not texts:
        return []
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return enc["input_ids"]


def pad(id_lists: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest: ``(input_ids [B, T] int64, attention_mask [B, T] int64)``."""
    width = max(len(x) for x in id_lists)
    ids = np.full((len(id_lists), width), int(pad_id), dtype=np.int64)
    mask = np.zeros((len(id_lists), width), dtype=np.int64)
    for i, x in enumerate(id_lists):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def length_sorted_batches(
    id_lists: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    progress: bool = False,
    desc: str = "encoding",
    delay: float = 1.0,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, input_ids, attention_mask)`` batches, longest texts first.

    ``rows`` are the positions in ``id_lists`` of the batch's texts. A tqdm bar counts
    texts when ``progress`` is true; it appears only once the loop has run ``delay``
    seconds, so short encodes stay quiet.
    """
    lengths = np.fromiter((len(x) for x in id_lists), dtype=np.int64, count=len(id_lists))
    order = np.argsort(-lengths, kind="stable")
    with tqdm(
        total=len(order), unit="text", desc=desc, disable=not progress, smoothing=0.1, delay=delay
    ) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = pad([id_lists[i] for i in rows], pad_id)
            yield rows, ids, mask
            bar.update(len(rows))
