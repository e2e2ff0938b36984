"""The fitted feature pipeline: everything that turns rows into a model's inputs, fitted
once on a training run and saved with the model, so that exporting it never prepares
the data again (FuxiCTR's feature processor, for this library).

A pipeline folder holds

=====================================  ==================================================
``pipeline.json``                      tasks, the resolved text settings (absolute cache
                                       folder), lexical fields and weight, the data folder
                                       (absolute), sizes
``preprocessor.json``                  the fitted preprocessing (:mod:`ltr.features.preprocess`)
``history/pairs.parquet``, ``history/products.parquet``
                                       history features as of the end of the validation
                                       window (what a service serves with)
``neighbours/``                        the neighbour label tables (when the features read
                                       them)
``text/queries.parquet``, ``text/query_embeddings.safetensors``
                                       every training query and its embedding
``sample/``                            a sample of judged pools and test sessions, laid out
                                       as training laid them out (features, embeddings,
                                       labels): export replays it through the package to
                                       check parity and evaluates the model on it
=====================================  ==================================================

Only JSON, Parquet and safetensors: nothing in a pipeline folder is executed on load.
:func:`ltr.serving.export_package` reads it; ``ltr fit`` writes one beside its logs (and
records its path in every checkpoint); every ranker folder holds one in ``pipeline/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.errors import DataValidationError
from ltr.features.preprocess import Preprocessor
from ltr.io import atomic_dir, read_json, read_table, write_json, write_table

FORMAT_VERSION = 1
SAMPLE_SETS = ("pools", "known_pools", "test")
ARRAYS = ("numeric", "categorical", "query_text", "product_text", "position", "mask")


@dataclass
class FittedPipeline:
    """What a model package needs from the training run, besides the catalog and the
    customer table (read from ``data_dir`` at export)."""

    preprocessor: Preprocessor
    tasks: list[str]
    data_dir: str
    text: dict[str, Any] | None
    lexical_fields: list[str]
    lexical_weight: float
    history: tuple[pd.DataFrame, pd.DataFrame]
    neighbours: Any
    query_texts: list[str]
    query_embeddings: np.ndarray | None
    sample: dict[str, Any] = field(default_factory=dict)  # set -> ListData
    sample_products: pd.DataFrame | None = None  # product_id, text of the sample's slots
    sample_embeddings: np.ndarray | None = None  # [n, d] of sample_products
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_prepared(cls, data: Any, max_lists: int = 200) -> FittedPipeline:
        """The pipeline of :class:`~ltr.training.prepare.PreparedData`, with up to
        ``max_lists`` lists of each sample set."""
        text = None if data.text is None else dict(data.text)
        if text and text.get("cache_dir"):
            text["cache_dir"] = str(Path(text["cache_dir"]).resolve())
        sample = {}
        for name in SAMPLE_SETS:
            lists = getattr(data, name, None)
            if lists is not None and len(lists):
                sample[name] = lists.subset(np.arange(min(len(lists), max_lists)))
        used = sorted({int(i) for s in sample.values() for i in s.product_text[s.mask]})
        remap = np.zeros(max(len(data.product_ids), 1), dtype=np.int64)
        remap[used] = np.arange(len(used))
        for lists in sample.values():
            lists.product_text = np.where(lists.mask, remap[lists.product_text], 0)
        products = pd.DataFrame({"product_id": [data.product_ids[i] for i in used],
                                 "text": [data.product_texts[i] for i in used]})
        emb = None if data.product_embeddings is None else data.product_embeddings[used]
        data_dir = data.info.get("data_dir") or (data.config or {}).get("data_dir") or "."
        return cls(data.preprocessor, list(data.tasks), str(Path(data_dir).resolve()), text,
            list(data.lexical_fields), float(data.lexical_weight), data.history,
            data.neighbours, list(data.query_texts), data.query_embeddings, sample,
            products, emb, {"held_out_queries": list(data.held_out_queries)})

    # ------------------------------------------------------------------ the data view
    def as_data(self) -> Any:
        """A :class:`~ltr.training.prepare.PreparedData`-like view for rankers and export:
        the sample lists index ``product_texts`` / ``product_embeddings`` of the sample's
        products, ``query_texts`` / ``query_embeddings`` of every training query."""
        from types import SimpleNamespace

        return SimpleNamespace(
            preprocessor=self.preprocessor, tasks=self.tasks, text=self.text,
            lexical_fields=self.lexical_fields, lexical_weight=self.lexical_weight,
            history=self.history, neighbours=self.neighbours, query_texts=self.query_texts,
            query_embeddings=self.query_embeddings,
            product_ids=[] if self.sample_products is None else
            self.sample_products["product_id"].tolist(),
            product_texts=[] if self.sample_products is None else
            self.sample_products["text"].astype(str).tolist(),
            product_embeddings=self.sample_embeddings,
            pools=self.sample.get("pools"), known_pools=self.sample.get("known_pools"),
            test=self.sample.get("test"), valid=None,
            held_out_queries=self.info.get("held_out_queries", []),
            query_index={q: i for i, q in enumerate(self.query_texts)})

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write the pipeline to ``folder``, whole or not at all (:func:`ltr.io.atomic_dir`)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            self.preprocessor.save(tmp / "preprocessor.json")
            write_table(self.history[0].reset_index(drop=True), tmp / "history" / "pairs.parquet")
            write_table(self.history[1].reset_index(drop=True),
                        tmp / "history" / "products.parquet")
            write_table(pd.DataFrame({"query": self.query_texts}), tmp / "text" / "queries.parquet")
            arrays: dict[str, np.ndarray] = {}
            if self.query_embeddings is not None:
                arrays["query_embeddings"] = np.ascontiguousarray(self.query_embeddings, np.float32)
            if self.sample_embeddings is not None:
                arrays["sample_embeddings"] = np.ascontiguousarray(self.sample_embeddings,
                                                                   np.float32)
            if self.neighbours is not None:
                self.neighbours.save(tmp / "neighbours")
            sample_info = {}
            for name, lists in self.sample.items():
                for key in ARRAYS:
                    arrays[f"{name}.{key}"] = np.ascontiguousarray(getattr(lists, key))
                arrays[f"{name}.warm"] = np.asarray(lists.warm, dtype=bool)
                for label, values in lists.labels.items():
                    arrays[f"{name}.label.{label}"] = np.ascontiguousarray(values)
                sample_info[name] = {
                    "keys": [str(k) for k in lists.keys],
                    "product_id": [[_plain(p) for p in row] for row in lists.product_id],
                    "customer_id": None if lists.customer_id is None else
                    [_plain(c) for c in lists.customer_id]}
            if self.sample_products is not None:
                write_table(self.sample_products.assign(
                    product_id=self.sample_products["product_id"].map(_plain)),
                    tmp / "sample" / "products.parquet")
            (tmp / "sample").mkdir(parents=True, exist_ok=True)
            save_file(arrays, str(tmp / "arrays.safetensors"))
            write_json(sample_info, tmp / "sample" / "lists.json")
            write_json({"format_version": FORMAT_VERSION, "tasks": self.tasks,
                        "data_dir": self.data_dir, "text": self.text,
                        "lexical_fields": self.lexical_fields,
                        "lexical_weight": self.lexical_weight,
                        "neighbours": self.neighbours is not None,
                        "info": self.info}, tmp / "pipeline.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FittedPipeline:
        from safetensors.numpy import load_file

        from ltr.features.neighbours import QueryNeighbours
        from ltr.training.lists import ListData

        folder = Path(folder)
        meta = read_json(folder / "pipeline.json")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataValidationError(str(folder / "pipeline.json"), f"pipeline format "
                                      f"{meta.get('format_version')!r} is not "
                                      f"{FORMAT_VERSION}", column="format_version")
        try:
            arrays = load_file(str(folder / "arrays.safetensors"))
        except Exception as exc:  # noqa: BLE001 - any safetensors format error
            raise DataValidationError(str(folder / "arrays.safetensors"), f"cannot be read: "
                                      f"{exc}") from exc
        history = (read_table(folder / "history" / "pairs.parquet"),
                   read_table(folder / "history" / "products.parquet"))
        queries = read_table(folder / "text" / "queries.parquet")["query"].astype(str).tolist()
        nn = QueryNeighbours.load(folder / "neighbours") if meta.get("neighbours") else None
        info = read_json(folder / "sample" / "lists.json")
        sample = {}
        for name, meta_lists in info.items():
            labels = {k.split(".", 2)[2]: v for k, v in arrays.items()
                      if k.startswith(f"{name}.label.")}
            pid = np.empty(arrays[f"{name}.mask"].shape, dtype=object)
            for g, row in enumerate(meta_lists["product_id"]):
                pid[g, :len(row)] = row
            cust = meta_lists["customer_id"]
            sample[name] = ListData(
                keys=np.asarray(meta_lists["keys"], dtype=object),
                **{key: arrays[f"{name}.{key}"] for key in ARRAYS}, product_id=pid,
                labels=labels, customer_id=None if cust is None else
                np.asarray(cust, dtype=object), warm=arrays[f"{name}.warm"])
        products_path = folder / "sample" / "products.parquet"
        return cls(Preprocessor.load(folder / "preprocessor.json"), list(meta["tasks"]),
                   str(meta["data_dir"]), meta.get("text"), list(meta["lexical_fields"]),
                   float(meta["lexical_weight"]), history, nn, queries,
                   arrays.get("query_embeddings"), sample,
                   read_table(products_path) if products_path.exists() else None,
                   arrays.get("sample_embeddings"), dict(meta.get("info") or {}))


def _plain(value: Any) -> Any:
    if value is None:
        return None
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, int | str) else str(value)
