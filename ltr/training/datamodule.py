"""The Lightning data module: :func:`ltr.training.prepare.prepare` behind Lightning's
interface, with list sampling for training."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
from pydantic import Field
from torch.utils.data import DataLoader

from ltr.checks import FieldProblem, Range
from ltr.config_schema import Section, paths_or, signature_schema, unique_list, validate
from ltr.errors import ConfigError
from ltr.features.spec import TASK_COLUMNS, FeatureSpec
from ltr.features.split import Split
from ltr.io import write_table
from ltr.labels.cli import Spark
from ltr.labels.config import LabelConfig
from ltr.text.config import TextSection
from ltr.training.lists import OUTCOMES, ListData, ListDataset, OutcomeSampler
from ltr.training.prepare import PreparedData, prepare
from ltr.training.text_branch import FineTunedText, FrozenTextTables, QueryTunedText

EVIDENCE = {"coverage": "lex_coverage", "history_label": "hist_pair_label",
            "history_behaviour": "hist_pair_behaviour", "neighbour_label": "nn_label"}


def evidence_columns(pre: Any) -> dict[str, dict[str, Any]]:
    """Where the label evidence the ranking score may use directly sits in the
    preprocessed numeric features: ``{output: {index, missing_index, zero}}`` for each
    column of :data:`EVIDENCE` the feature spec has (``zero``: a label score of 0 after
    preprocessing, the value a missing label takes in the score)."""
    names = pre.numeric_names
    out = {}
    for output, col in EVIDENCE.items():
        if col not in names or col in pre.spec.log1p:
            continue
        miss = f"{col}__missing"
        out[output] = {"index": names.index(col),
                       "missing_index": names.index(miss) if miss in names else None,
                       "zero": (0.0 - pre.means[col]) / pre.stds[col],
                       "mean": pre.means[col], "std": pre.stds[col]}
    return out


DEFAULT_RATES = {"none": 0.1, "click": 0.2, "cart": 0.2, "purchase": 0.2, "pool": 0.3}
PREDICT_SPLITS = ("test", "valid", "pools", "known_pools")


class Neighbours(Section):
    """``data.neighbours``: label transfer from similar known queries."""

    k: Annotated[int, Range(ge=0, integer=True)] = Field(
        10, description="known queries whose labels a query borrows (0: off)")


def _fold_within_folds(args: Any) -> Any:
    if args.folds > 1 and args.fold >= args.folds:
        raise FieldProblem("fold", f"must be < data.folds ({args.folds}), got {args.fold}")
    return args


class LtrDataModule(pl.LightningDataModule):
    """Search-log lists for training, validation, test and prediction.

    Args:
        data_dir: folder with products/customers/impressions (and judgements).
        tasks: the model's tasks (labels built for each).
        features: the feature spec (:class:`ltr.features.FeatureSpec` keys); by default
            the spec of :mod:`ltr.features.defaults`, restricted to the columns the data
            has.
        labels: :class:`ltr.labels.LabelConfig` keys for the relevance task, or the path
            of a label folder ``ltr label`` wrote for this training window (``window``
            key; refused, naming both windows, if its fingerprint differs).
        text: the text encoder (:class:`ltr.text.config.TextSection` keys: the model
            section decides fine-tuning, towers and interactions), or null for no text
            features.
        split: the time windows (:class:`ltr.features.split.Split`).
        folds, fold: query-level k-fold hold-out (``folds`` 0 or 1: none).
        hard_negatives: unshown products of the same query added to each training list.
        sampling: ``uniform``, or ``diverse`` with ``sampling_rates``.
        sampling_rates: the share of an epoch drawn from lists of each outcome (none,
            click, cart, purchase, pool).
        batch_size: lists per training batch.
        eval_batch_size: lists per evaluation batch.
        num_workers: DataLoader worker processes.
        predict_split: which lists ``predict`` scores: test, valid or pools (the file is
            written by the ``WritePredictions`` callback).
        anonymous_share: share of training sessions seen without their customer.
        pool_lists, pool_list_size: candidate-pool training lists for the relevance task
            (see :func:`ltr.training.prepare.prepare`); 0 turns them off.
        history_dropout: share of training lists without (query, product) history.
        valid_query_share: share of training queries kept for validation (never trained
            on; their candidate pools are scored against their derived labels: the cold,
            new-query case).
        neighbours: label transfer from similar known queries (``k`` neighbours per
            query; 0 turns it off), see :mod:`ltr.features.neighbours`.
        stream_dir: stream training lists from Parquet written there (one row group in
            memory at a time; lists shuffled once, so ``sampling`` does not apply).
        seed: sampling and hard-negative seed.
        engine: where the impression log is read from (:mod:`ltr.training.logview`):
            ``pandas`` loads it whole; ``duckdb`` checks and queries it in SQL with memory
            bounded by ``memory_limit`` (spilling to disk), ``spark`` on a Spark session
            (``spark: {master, conf}``); ``auto``: ``duckdb`` with ``stream_dir`` (the
            path for logs larger than memory), else ``pandas``. Same lists either way.
        memory_limit: the SQL engine's memory (``2GB``, ``500MB``; DuckDB default 2GB).
        spark: ``{master, conf}`` of the Spark session (``engine: spark``).
    """

    # numeric constraints of the arguments (ltr.checks), checked before any data is read
    RANGES = {"folds": Range(ge=0, integer=True), "fold": Range(ge=0, integer=True),
              "hard_negatives": Range(ge=0, integer=True),
              "batch_size": Range(ge=1, integer=True),
              "eval_batch_size": Range(ge=1, integer=True),
              "num_workers": Range(ge=0, integer=True), "anonymous_share": Range(ge=0, le=1),
              "pool_lists": Range(ge=0, integer=True), "pool_list_size": Range(ge=1, integer=True),
              "history_dropout": Range(ge=0, le=1), "valid_query_share": Range(ge=0, lt=1),
              "seed": Range(integer=True)}
    # narrower types than the signature's (choices, nested sections), for the schema
    TYPES = {"tasks": unique_list(Literal[tuple(TASK_COLUMNS)], min_length=1, what="task")
             | None,
             "features": FeatureSpec | None, "labels": paths_or(LabelConfig),
             "text": TextSection | None, "split": Split | None,
             "sampling": Literal["uniform", "diverse"],
             "sampling_rates": dict[Literal[OUTCOMES], Annotated[float, Range(ge=0)]] | None,
             "predict_split": Literal[PREDICT_SPLITS], "neighbours": Neighbours | None,
             "spark": Spark | None}

    # read only by the data loaders of ltr fit; the rankers of ltr benchmark / ltr sweep
    # train on the prepared data with their own params (what to set there instead)
    LOADER_KEYS = {"batch_size": "models[i].params.batch_size",
                   "eval_batch_size": "nothing: rankers score in their own batches",
                   "num_workers": "nothing: rankers read the prepared data in process",
                   "sampling": "models[i].params.sampling (mmoe, ple)",
                   "sampling_rates": "nothing: rankers sample with the default rates",
                   "predict_split": "nothing: ltr predict reads it"}

    @classmethod
    @functools.cache
    def schema(cls, loaders: bool = True) -> type[Section]:
        """The ``data`` section's schema (:mod:`ltr.config_schema`): the signature with
        ``RANGES`` and ``TYPES``, unknown keys refused, and ``fold < folds``. Without
        ``loaders``: the section as ``ltr benchmark`` and ``ltr sweep`` read it, which
        refuses :data:`LOADER_KEYS` (they would be ignored there)."""
        skip = () if loaders else tuple(cls.LOADER_KEYS)
        moved = {} if loaders else {
            k: f"is not read by ltr benchmark / ltr sweep (only by ltr fit's loaders): set "
               f"{v}" for k, v in cls.LOADER_KEYS.items()}
        return signature_schema("DataSection" if loaders else "RankerDataSection",
                                cls.__init__, ranges=cls.RANGES, types_=cls.TYPES, doc=cls,
                                skip=skip, moved=moved,
                                validators={"fold_within_folds": _fold_within_folds})

    @classmethod
    def check_args(cls, args: dict[str, Any], loaders: bool = True) -> None:
        """Every check of the ``data`` section that needs no data (types, ranges,
        choices, unknown keys of the nested sections); ``ltr fit`` runs it before
        anything is prepared, ``ltr benchmark`` and ``ltr sweep`` without ``loaders``."""
        validate(cls.schema(loaders), args, "data")

    def __init__(self, data_dir: str = "data_samples/wands", tasks: list[str] | None = None,
                 features: dict[str, Any] | None = None, labels: dict[str, Any] | str | None = None,
                 text: dict[str, Any] | None = None, split: dict[str, float] | None = None,
                 folds: int = 0, fold: int = 0, hard_negatives: int = 5,
                 sampling: str = "diverse", sampling_rates: dict[str, float] | None = None,
                 batch_size: int = 64, eval_batch_size: int = 256, num_workers: int = 0,
                 predict_split: str = "test", anonymous_share: float = 0.1,
                 pool_lists: int = 2, pool_list_size: int = 25,
                 history_dropout: float = 0.3, valid_query_share: float = 0.15,
                 stream_dir: str | None = None, neighbours: dict[str, Any] | None = None,
                 seed: int = 0, engine: Literal["auto", "pandas", "duckdb", "spark"] = "auto",
                 memory_limit: str | None = None,
                 spark: dict[str, Any] | None = None) -> None:
        args = dict(locals())
        self.check_args({k: args[k] for k in self.schema().model_fields})
        super().__init__()
        rates = sampling_rates or DEFAULT_RATES
        self.save_hyperparameters()
        self.tasks = tasks or ["click", "add_to_cart", "purchase", "relevance"]
        self.rates = rates if sampling == "diverse" else None
        self._prepared: PreparedData | None = None
        self._encoder = None

    @classmethod
    def from_prepared(cls, prepared: PreparedData, **kwargs: Any) -> LtrDataModule:
        """A data module over data already prepared (by :func:`prepare`)."""
        dm = cls(tasks=prepared.tasks, **kwargs)
        dm._prepared = prepared
        dm._encoder = prepared.encoder
        return dm

    # ------------------------------------------------------------------ preparation
    @property
    def prepared(self) -> PreparedData:
        if self._prepared is None:
            hp = self.hparams
            if hp.text is not None:
                from ltr.text import TextConfig, TextEncoder

                self._encoder = TextEncoder.from_config(TextConfig.from_mapping(hp.text,
                                                                                "data.text"))
            self._prepared = prepare(hp.data_dir, self.tasks, hp.features,
                                     hp.labels, hp.text, hp.split, hp.folds, hp.fold,
                                     hp.hard_negatives, hp.seed, encoder=self._encoder,
                                     anonymous_share=hp.anonymous_share,
                                     pool_lists=hp.pool_lists,
                                     pool_list_size=hp.pool_list_size,
                                     history_dropout=hp.history_dropout,
                                     valid_query_share=hp.valid_query_share,
                                     stream_dir=hp.stream_dir, neighbours=hp.neighbours,
                                     engine=hp.engine, memory_limit=hp.memory_limit,
                                     spark=hp.spark)
            self._prepared.config = {"tasks": list(self.tasks),
                                     **{k: v for k, v in dict(hp).items() if k != "tasks"}}
            for note in self._prepared.info.get("notes", []):
                print(f"note: {note}", flush=True)
        return self._prepared

    @property
    def feature_dims(self) -> dict[str, Any]:
        """Widths the model is built with (linked into ``model.feature_dims``)."""
        p = self.prepared
        return {"n_numeric": p.preprocessor.numeric_width,
                "cardinalities": p.preprocessor.cardinalities,
                "text_dim": 0 if p.query_embeddings is None else int(p.query_embeddings.shape[1]),
                "evidence": evidence_columns(p.preprocessor),
                "lexical_weight": float(p.lexical_weight)}

    def frozen_text(self) -> FrozenTextTables:
        """The precomputed embeddings of every query and product of the data."""
        p = self.prepared
        if p.query_embeddings is None:
            raise ConfigError("data.text", "is null, so there are no text embeddings")
        return FrozenTextTables(p.query_embeddings, p.product_embeddings)

    def text_branch(self, trainable_layers: int = 0, tower: str = "query"):
        """A fine-tuned text branch (``trainable_layers > 0``; ``tower``: ``query`` tunes a
        copy of the encoder for queries only, ``shared`` one encoder for both), or the
        frozen tables."""
        import copy

        p = self.prepared
        if trainable_layers <= 0:
            return self.frozen_text()
        if self._encoder is None:
            raise ConfigError("data.text", "fine-tuning needs the text encoder (data.text)")
        encoder = copy.deepcopy(self._encoder)  # the frozen encoder stays as it is
        encoder.set_trainable_layers(trainable_layers)
        if tower == "query":
            return QueryTunedText(encoder, p.query_texts)
        return FineTunedText(encoder, p.query_texts, p.product_texts)

    def setup(self, stage: str | None = None) -> None:
        _ = self.prepared

    # ------------------------------------------------------------------ loaders
    def _loader(self, data: ListData, train: bool = False) -> DataLoader:
        hp = self.hparams
        sampler = OutcomeSampler(data.outcomes(), self.rates, hp.seed) if train else None
        return DataLoader(ListDataset(data), batch_size=hp.batch_size if train else
                          hp.eval_batch_size, sampler=sampler, num_workers=hp.num_workers)

    def train_dataloader(self) -> DataLoader:
        p = self.prepared
        if p.train is None:
            return DataLoader(p.train_stream, batch_size=self.hparams.batch_size,
                              num_workers=self.hparams.num_workers)
        return self._loader(p.train, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.prepared.valid)

    def test_dataloader(self) -> list[DataLoader]:
        loaders = [self._loader(self.prepared.test)]
        for pools in (self.prepared.pools, self.prepared.known_pools):
            if pools is not None:
                loaders.append(self._loader(pools))
        return loaders

    def predict_data(self) -> ListData:
        p = self.prepared
        data = {"test": p.test, "valid": p.valid, "pools": p.pools,
                "known_pools": p.known_pools}[self.hparams.predict_split]
        if data is None:
            raise ConfigError("data.predict_split", f"there are no "
                              f"{self.hparams.predict_split.replace('_', ' ')}: pools need "
                              "judgements in the data folder (pools: of queries never trained "
                              "on; known_pools: of the queries trained on)")
        return data

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_data())

    # ------------------------------------------------------------------ output
    def write_predictions(self, outputs: list[dict[str, Any]], path: str | Path) -> Path:
        """Flatten predicted lists to rows: list id, product_id, score, task outputs."""
        data = self.predict_data()
        index = np.concatenate([o["index"].numpy() for o in outputs])
        cols: dict[str, np.ndarray] = {k: np.concatenate([o[k].numpy() for o in outputs])
                                       for k in outputs[0] if k != "index"}
        mask = data.mask[index]
        group = "query" if self.hparams.predict_split.endswith("pools") else "session_id"
        frame = {group: np.repeat(data.keys[index], mask.sum(axis=1)),
                 "product_id": data.product_id[index][mask]}
        frame.update({k: v[mask] for k, v in cols.items()})
        return write_table(pd.DataFrame(frame), path)
