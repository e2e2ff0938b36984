"""Load a model package and rank products per request.

Example::

    from ltr.serving import RankingService

    service = RankingService.load("packages/mmoe")          # verifies every file
    ranking = service.rank("modern sofa", [101, 102, {"product_id": "new-1",
                                                      "title": "grey sofa"}],
                           customer=42, top_k=10)
    ranking.product_ids                                     # best first
    ranking.products[0].outputs                             # per-task scores
    service.rank_batch([{"query": ..., "products": [...]}, ...])

Loading reads only the files the manifest lists, after checking their SHA-256, and
only JSON, Parquet, safetensors and XGBoost JSON: nothing in a package is executed.
``rank`` and ``rank_batch`` share one code path (a single request is a batch of one)
and keep no per-request state on the service, so one service can be called from many
threads at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltr.errors import DataValidationError
from ltr.features.neighbours import FILES as NEIGHBOUR_FILES
from ltr.features.preprocess import Preprocessor
from ltr.features.stores import ColumnStore
from ltr.io import read_json, read_table
from ltr.serving.features import RequestAssembler, Schema
from ltr.serving.manifest import MANIFEST, read_manifest, verify_package
from ltr.serving.requests import (
    RankedProduct,
    Ranking,
    RankRequest,
    RequestError,
    as_request,
)

# package layout (relative paths)
MODEL_DIR = "model"
FEATURES = "features.json"
CATALOG = "catalog/products.parquet"
PRODUCT_EMBEDDINGS = "catalog/product_embeddings.safetensors"
CUSTOMERS = "customers.parquet"
PAIR_HISTORY = "history/pairs.parquet"
PRODUCT_HISTORY = "history/products.parquet"
TEXT = "text/text.json"
QUERIES = "text/queries.parquet"
QUERY_EMBEDDINGS = "text/query_embeddings.safetensors"
ENCODER_DIR = "text/encoder"
METRICS = "metrics.json"
DATA_CONFIG = "data.json"
TUNED_ENCODER_DIR = "text/tuned_encoder"
TUNED_QUERY_EMBEDDINGS = "text/tuned_query_embeddings.safetensors"
TUNED_PRODUCT_EMBEDDINGS = "catalog/tuned_product_embeddings.safetensors"
NEIGHBOUR_DIR = "neighbours"  # ltr.features.neighbours.QueryNeighbours.save
NEIGHBOUR_INFO = f"{NEIGHBOUR_DIR}/{NEIGHBOUR_FILES['info']}"


class FairSlots:
    """At most ``n`` holders at once, admitted first come, first served (a plain
    semaphore lets late callers overtake, which showed as 1.6 s p99 latencies under 8
    callers)."""

    def __init__(self, n: int) -> None:
        self._cond = threading.Condition()
        self._free = n
        self._queue: deque[object] = deque()

    def __enter__(self) -> FairSlots:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._free == 0:
                self._cond.wait()
            self._queue.popleft()
            self._free -= 1
            self._cond.notify_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


class RowTexts(Sequence[str]):
    """The product text of each request row, looked up when read (only text rankers such
    as BM25 read them): a record's own text, else its catalog product's."""

    def __init__(self, catalog_rows: np.ndarray, catalog_texts: list[str],
                 record_texts: dict[int, str]) -> None:
        self.rows, self.catalog, self.records = catalog_rows, catalog_texts, record_texts

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        text = self.records.get(i)
        return text if text is not None else self.catalog[int(self.rows[i])]


@dataclass
class RequestData:
    """What a ranker's ``score`` reads besides the lists, for one batch of requests (the
    request-time counterpart of :class:`ltr.training.prepare.PreparedData`)."""

    preprocessor: Preprocessor
    query_texts: list[str]
    product_texts: Sequence[str]
    query_embeddings: np.ndarray | None
    product_embeddings: np.ndarray | None
    tuned_query_embeddings: np.ndarray | None = None  # a fine-tuned model's query tower
    tuned_product_embeddings: np.ndarray | None = None  # ... and product tower (shared)


def _read_embeddings(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))["embeddings"]
    except Exception as exc:  # noqa: BLE001 - any safetensors format error
        raise DataValidationError(str(path), f"cannot be read as safetensors embeddings: "
                                  f"{exc}") from exc


class RankingService:
    """A model package, loaded: ``rank`` / ``rank_batch`` (see the module docstring).

    Args:
        folder: a package written by :func:`ltr.serving.export_package`.
        verify: check the manifest's SHA-256 of every file first (default; turn off only
            for a folder you have just verified).
        num_threads: set torch's intra-op threads (process-wide) and the ranker's own
            scoring threads (XGBoost: 1 unless set); ``None`` leaves torch as it is.
        cache_size: texts kept per LRU cache (unseen queries, unseen product records).
        max_concurrent: requests scored at the same time (default: the CPU count); more
            callers wait their turn. Many threads inside Python at once mostly fight over
            the GIL: on 2 cores, 8 unbounded callers got a third less throughput than 1.
        use_onnx: encode unseen texts with the package's ONNX encoder when it has one and
            onnxruntime is installed (3x faster than PyTorch here); else PyTorch.
    """

    def __init__(self, folder: str | Path, *, verify: bool = True,
                 num_threads: int | None = None, cache_size: int = 10_000,
                 max_concurrent: int | None = None, use_onnx: bool = True,
                 key: str | bytes | None = None) -> None:
        from ltr.rankers.base import load_ranker

        self.folder = Path(folder)
        self.manifest = verify_package(self.folder, key=key) if verify \
            else read_manifest(self.folder)
        f = self.folder
        self.schema = Schema.from_dict(read_json(f / FEATURES))
        self.ranker = load_ranker(f / MODEL_DIR)
        check_model_matches(self.manifest, self.ranker, f / MANIFEST)
        self.ranker.set_inference_threads(1)  # per-request rows: one thread each is best
        self.preprocessor = Preprocessor.from_dict(self.ranker.preprocessor_ or {},
                                                   str(f / MODEL_DIR / "preprocessor.json"))
        numeric = self.schema.numeric_columns
        catalog = read_table(f / CATALOG)
        self.catalog = ColumnStore(catalog, "product_id", numeric, CATALOG)
        customers = ColumnStore(read_table(f / CUSTOMERS), "customer_id", numeric, CUSTOMERS) \
            if CUSTOMERS in self.manifest["files"] else None
        pairs = ColumnStore(read_table(f / PAIR_HISTORY), ["query", "product_id"], numeric,
                            PAIR_HISTORY)
        products = ColumnStore(read_table(f / PRODUCT_HISTORY), "product_id", numeric,
                               PRODUCT_HISTORY)
        self.text = None
        self.tuned_catalog = None
        self.text_info = read_json(f / TEXT) if TEXT in self.manifest["files"] else None
        self.uses_embeddings = bool(self.text_info and self.text_info.get("embeddings"))
        self.uses_texts = bool(self.text_info)
        self.catalog_texts: list[str] = []
        self.catalog_embeddings: np.ndarray | None = None
        if self.uses_texts:
            from ltr.text import product_text

            s = self.schema
            self.catalog_texts = product_text(catalog, s.text_fields[1:],
                                              title_column=s.title_column,
                                              separator=s.text_separator).astype(str).tolist()
        if self.uses_embeddings:
            from ltr.serving.text import PackagedText

            self.catalog_embeddings = _read_embeddings(f / PRODUCT_EMBEDDINGS)
            if len(self.catalog_embeddings) != len(self.catalog):
                raise DataValidationError(str(f / PRODUCT_EMBEDDINGS), f"has "
                                          f"{len(self.catalog_embeddings)} rows for "
                                          f"{len(self.catalog)} catalog products")
            known = read_table(f / QUERIES)["query"].astype(str).tolist()
            tuned = self.text_info.get("tuned")
            self.tuned_catalog = None
            if tuned:
                from ltr.rankers.mmoe import load_tuned_encoder

                tuned_encoder = load_tuned_encoder(f / TUNED_ENCODER_DIR, tuned["encoder"])
                if tuned["tower"] == "shared":
                    self.tuned_catalog = _read_embeddings(f / TUNED_PRODUCT_EMBEDDINGS)
                self.text = PackagedText(self._load_encoder(), known,
                                         _read_embeddings(f / QUERY_EMBEDDINGS), cache_size,
                                         onnx=self._load_onnx(pair=True) if use_onnx
                                         else None, tuned=tuned_encoder,
                                         tuned_query_embeddings=_read_embeddings(
                                             f / TUNED_QUERY_EMBEDDINGS))
            else:
                self.text = PackagedText(self._load_encoder(), known,
                                         _read_embeddings(f / QUERY_EMBEDDINGS), cache_size,
                                         onnx=self._load_onnx() if use_onnx else None)
        neighbours = self._load_neighbours() if NEIGHBOUR_INFO in self.manifest["files"] \
            else None
        self.assembler = RequestAssembler(self.schema, self.preprocessor, self.catalog,
                                          customers, pairs, products,
                                          needs_title=self.uses_texts, neighbours=neighbours)
        self.loaded_at = time.time()
        self._slots = FairSlots(max(1, int(max_concurrent or os.cpu_count() or 1)))
        if num_threads is not None:
            self.set_threads(num_threads)

    def set_threads(self, n: int) -> None:
        """Threads for scoring: torch's intra-op threads (process-wide) and the ranker's
        own library (XGBoost). The ONNX encoder keeps one: with two, its thread pool and
        torch's spun against each other (p99 57–87 ms against 17–21 ms with one)."""
        import torch

        torch.set_num_threads(int(n))
        self.ranker.set_inference_threads(int(n))

    @classmethod
    def load(cls, folder: str | Path, **kwargs: Any) -> RankingService:
        return cls(folder, **kwargs)

    def _load_onnx(self, pair: bool = False):
        from ltr.serving.onnx_encoder import ONNX_FILE, PAIR_ONNX_FILE, OnnxEncoder

        name = PAIR_ONNX_FILE if pair else ONNX_FILE
        if name not in self.manifest["files"]:
            return None
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None  # the PyTorch encoder computes the same
        return OnnxEncoder(self.folder / name, outputs=2 if pair else 1)

    def _load_neighbours(self):
        from ltr.features.neighbours import QueryNeighbours

        return QueryNeighbours.load(self.folder / NEIGHBOUR_DIR)

    def _load_encoder(self):
        from ltr.serving.encoder import load_package_encoder

        return load_package_encoder(self.folder, self.text_info)

    # ------------------------------------------------------------------ info
    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind"))

    @property
    def outputs(self) -> list[str]:
        return list(self.manifest.get("outputs", []))

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "kind": self.kind, "outputs": self.outputs,
                "catalog_products": len(self.catalog),
                "known_queries": len(self.text.query_index) if self.text else 0,
                "created": self.manifest.get("created"),
                "signed": "signature" in self.manifest,
                "versions": self.manifest.get("versions", {})}

    # ------------------------------------------------------------------ ranking
    def rank(self, query: str, products: Sequence[Any], customer: Any = None,
             top_k: int | None = None) -> Ranking:
        """Rank ``products`` for ``query`` (see :mod:`ltr.serving.requests`)."""
        return self._rank([RankRequest(query, products, customer, top_k)], prefix="")[0]

    def rank_batch(self, requests: Sequence[RankRequest | Mapping[str, Any]]) -> list[Ranking]:
        """Rank several requests in one model call; errors name ``requests[i]....``."""
        if isinstance(requests, str | bytes | Mapping) or not isinstance(requests, Sequence):
            raise RequestError("requests", "must be a list of requests")
        if not requests:
            return []
        return self._rank([as_request(r, f"requests[{i}]") for i, r in enumerate(requests)],
                          prefix="requests")

    def score_requests(self, requests: list[RankRequest], prefix: str = "requests"
                       ) -> tuple[Any, dict[str, np.ndarray]]:
        """The assembled batch and the ranker's ``{output: [R, L]}`` scores."""
        embed = self.text.queries if self.uses_embeddings else None
        batch = self.assembler.assemble(requests, prefix, embed)
        data = self._request_data(batch)
        return batch, self.ranker.score_outputs(batch.lists, data)

    def _request_data(self, batch) -> RequestData:
        rows = batch.catalog_rows
        new = self.assembler.record_texts(batch.records) if self.uses_texts else {}
        texts = RowTexts(rows, self.catalog_texts, new)
        q_emb = p_emb = tq_emb = tp_emb = None
        if self.uses_embeddings:
            text = self.text
            if text.tuned is not None:
                q_rows = text.query_rows(batch.queries)
                q_emb, tq_emb = q_rows[:, : text.dim], q_rows[:, text.dim:]
            else:
                q_emb = batch.query_embeddings if batch.query_embeddings is not None else \
                    text.queries(batch.queries)
            p_emb = self.catalog_embeddings[np.maximum(rows, 0)]
            if self.tuned_catalog is not None:
                tp_emb = self.tuned_catalog[np.maximum(rows, 0)]
            if new:
                p_rows = text.product_rows(list(new.values()))
                p_emb[list(new)] = p_rows[:, : text.dim]
                if tp_emb is not None:
                    tp_emb[list(new)] = p_rows[:, text.dim:]
        return RequestData(self.preprocessor, batch.queries, texts, q_emb, p_emb, tq_emb,
                           tp_emb)

    def _rank(self, requests: list[RankRequest], prefix: str) -> list[Ranking]:
        with self._slots:
            batch, scores = self.score_requests(requests, prefix)
        names = [k for k in scores if k != "score"]
        out = []
        for r, req in enumerate(requests):
            n = int(batch.offsets[r + 1] - batch.offsets[r])
            score = scores["score"][r, :n]
            order = np.argsort(-score, kind="stable")
            if req.top_k is not None:
                order = order[: req.top_k]
            ids = batch.lists.product_id[r]
            out.append(Ranking(req.query, [
                RankedProduct(ids[j], float(score[j]),
                              {k: float(scores[k][r, j]) for k in names})
                for j in order.tolist()]))
        return out

    def metrics(self) -> dict[str, Any]:
        """The evaluation written at export (``metrics.json``)."""
        return read_json(self.folder / METRICS) if METRICS in self.manifest["files"] else {}


def check_model_matches(manifest: dict[str, Any], ranker: Any, path: Path) -> None:
    """The manifest's ``kind`` and ``outputs`` must be the loaded model's: a manifest
    cannot relabel the model it ships."""
    if manifest.get("kind") != ranker.kind:
        raise DataValidationError(str(path), f"says kind {manifest.get('kind')!r} but "
                                  f"{MODEL_DIR}/ holds a {ranker.kind!r} model", column="kind")
    if list(manifest.get("outputs") or []) != list(ranker.output_names):
        raise DataValidationError(str(path), f"lists outputs {manifest.get('outputs')!r} but "
                                  f"the model has {list(ranker.output_names)}",
                                  column="outputs")


def load_package(folder: str | Path, **kwargs: Any) -> RankingService:
    """Verify and load a model package (see :class:`RankingService`)."""
    return RankingService(folder, **kwargs)


__all__ = ["RankingService", "load_package", "RequestData"]
