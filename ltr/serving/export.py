"""``ltr export``: a trained model -> a self-contained, verifiable model package.

Input (``checkpoint``): a saved ranker folder (``ranker.json``; ``ltr benchmark`` and
``ltr sweep`` write them, any :class:`~ltr.rankers.base.Ranker` ``save`` does) or a
Lightning checkpoint of ``ltr fit`` (``.ckpt``). The data the model was trained on is
prepared again from its recorded data-module arguments (or ``config``'s ``data``
section), and the rebuilt preprocessing must equal the one saved with the model.

Package layout::

    manifest.json                 kind, outputs, versions, source, SHA-256 of every file,
                                  its own digest and an optional HMAC signature
                                  (ltr.serving.manifest)
    model/                        ranker.json, preprocessor.json, weights (safetensors or
                                  XGBoost JSON)
    features.json                 where each input column comes from (Schema)
    data.json                     the data-module arguments used in training
    catalog/products.parquet      the catalog columns the features and texts need
    catalog/product_embeddings.safetensors   one row per catalog product
    customers.parquet             customer columns (leave out with include_customers=False)
    history/pairs.parquet         (query, product) history features (as of the end of the
                                  validation window, history labels included)
    history/products.parquet      product history features
    neighbours/                   known queries, their embeddings and labels, for the
                                  neighbour features (when the model reads them)
    text/text.json                encoder settings, fingerprint, weights reference
    text/encoder/                 copied encoder (safetensors + tokenizer files), if copied
    text/query_encoder.onnx       the encoder as ONNX, for fast on-the-fly encoding (when
                                  onnx + onnxruntime are installed; onnx=False skips it)
    text/queries.parquet, text/query_embeddings.safetensors   every training-data query
    metrics.json                  evaluation of the model on its test split, and the
                                  parity check of the package against it

Before the package is moved into place it is loaded like a service would load it and
scores up to ``parity_lists`` judged pools and test sessions through ``rank_batch``;
every score must equal the in-training score (``|diff| <= PARITY_TOL``) or nothing is
written. The package is built in a temporary folder beside ``out`` and renamed into place,
so a failed export leaves no half-written package and an existing one untouched.
"""

from __future__ import annotations

import gc
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ltr.errors import ConfigError, DataValidationError, LtrError
from ltr.features.assemble import Schema, row_schema
from ltr.features.neighbours import NEIGHBOUR_COLUMNS
from ltr.features.preprocess import Preprocessor
from ltr.features.stores import plain
from ltr.io import atomic_dir, current_umask, read_json, write_json, write_table
from ltr.progress import step
from ltr.serving import service as layout
from ltr.serving.manifest import verify_package, write_manifest
from ltr.serving.requests import RankRequest

PARITY_TOL = 1e-4
PARITY_BATCH = 25  # requests per rank_batch call in the parity check (bounds its memory)
TITLE = "title"


class ParityError(LtrError):
    """The package does not reproduce the in-training scores."""


# ---------------------------------------------------------------------- inputs
def load_trained(checkpoint: str | Path):
    """A fitted ranker from a ranker folder or an ``ltr fit`` checkpoint."""
    from ltr.rankers.base import MANIFEST as RANKER_MANIFEST
    from ltr.rankers.base import load_ranker

    path = Path(checkpoint)
    if path.is_dir():
        if not (path / RANKER_MANIFEST).exists():
            ckpts = sorted(path.rglob("*.ckpt"))
            hint = f"; it holds checkpoints, e.g. {ckpts[0]}" if ckpts else ""
            raise DataValidationError(str(path), f"is not a saved ranker (no "
                                      f"{RANKER_MANIFEST}){hint}")
        return load_ranker(path)
    if path.suffix == ".ckpt" or path.is_file():
        from ltr.rankers.mmoe import from_lightning_checkpoint

        return from_lightning_checkpoint(path)
    raise DataValidationError(str(path), "does not exist")


def data_arguments(ranker, config: str | Path | None, data_dir: str | None) -> dict[str, Any]:
    """The data-module arguments to rebuild the training data with."""
    if config is not None:
        from omegaconf import OmegaConf

        try:
            raw = OmegaConf.to_container(OmegaConf.load(str(config)), resolve=True)
        except Exception as exc:  # noqa: BLE001 - yaml errors
            raise DataValidationError(str(config), f"cannot be read as YAML: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            raise ConfigError("data", f"{config} has no 'data' section")
        args = dict(raw["data"])
        args = dict(args.get("init_args", args))
    else:
        args = dict(ranker.data_config_ or {})
    if not args:
        raise ConfigError("--config", "the model was saved without its data settings; pass "
                          "--config with the 'data' section it was trained with")
    if data_dir is not None:
        args["data_dir"] = str(data_dir)
    tasks = getattr(getattr(ranker, "module_", None), "tasks", None)
    if not args.get("tasks") and tasks:  # else the data module's default tasks
        args["tasks"] = list(tasks)
    args["stream_dir"] = None  # the package needs no streamed training rows
    return args


def prepared_data(args: dict[str, Any]):
    from ltr.training.datamodule import LtrDataModule

    try:
        dm = LtrDataModule(**args)
    except TypeError as exc:
        raise ConfigError("data", f"bad data-module arguments: {exc}") from exc
    return dm, dm.prepared


def find_pipeline(checkpoint: str | Path, ranker):
    """The fitted feature pipeline saved with a model (a ranker folder's ``pipeline/``, or
    the folder an ``ltr fit`` checkpoint records), or None (then export prepares the
    data again from the recorded settings)."""
    from ltr.features.pipeline import FittedPipeline

    folder = _pipeline_folder(checkpoint, ranker)
    return None if folder is None else FittedPipeline.load(folder)


def _pipeline_folder(checkpoint: str | Path, ranker) -> Path | None:
    from ltr.rankers.base import PIPELINE_DIR

    path = Path(checkpoint)
    folder = path / PIPELINE_DIR if path.is_dir() else getattr(ranker, "pipeline_path_", None)
    if folder is None or not (Path(folder) / "pipeline.json").exists():
        return None
    return Path(folder)


def pipeline_data(pipeline, ranker, data_dir: str | None):
    """``(data view, data arguments)`` for export from a fitted pipeline: the catalog and
    customer tables are read from the data folder (``data_dir`` overrides the recorded
    absolute one); nothing else of the log is read. The text encoder is loaded later,
    only if the package needs it."""
    from ltr.data.loaders import load_customers

    folder = Path(data_dir or pipeline.data_dir)
    data = pipeline.as_data()
    data.products = _products(folder)
    data.customers = load_customers(_table(folder, "customers"))
    args = {**(ranker.data_config_ or {}), "data_dir": str(folder)}
    return data, args


def _products(folder: Path) -> pd.DataFrame:
    from ltr.data.loaders import load_products

    return load_products(_table(folder, "products"))


def _table(folder: Path, name: str) -> Path:
    found = sorted(folder.glob(f"{name}.*"))
    if not found:
        raise DataValidationError(str(folder), f"has no {name} table ({name}.parquet, .csv "
                                  "or .tsv): the package needs the catalog and customers")
    return found[0]


def _check_preprocessor(saved: dict[str, Any] | None, rebuilt: dict[str, Any]) -> None:
    if saved is None:
        return
    for key in ("spec", "indicators", "vocabularies", "means", "stds"):
        a, b = saved.get(key), rebuilt.get(key)
        if key in ("means", "stds") and isinstance(a, dict) and isinstance(b, dict):
            same = a.keys() == b.keys() and all(np.isclose(a[k], b[k], rtol=1e-9, atol=1e-12)
                                                for k in a)
        else:
            same = a == b
        if not same:
            raise DataValidationError("preprocessor.json", f"the data settings do not rebuild "
                                      f"the preprocessing the model was trained with ('{key}' "
                                      "differs): was the data folder or its config changed?",
                                      column=key)


# ---------------------------------------------------------------------- schema
def build_schema(data, text_fields: list[str], separator: str) -> Schema:
    """The package's :class:`Schema`: the same :func:`ltr.features.assemble.row_schema`
    training joined its rows with."""
    return row_schema(data.preprocessor.spec, list(data.tasks), data.products,
                      data.customers, data.history, list(getattr(data, "lexical_fields", [])),
                      text_fields, separator)


def _uses_embeddings(ranker, data=None, spec=None) -> bool:
    """Whether the package needs text embeddings: the ranker reads them, or its features
    do (the neighbour features compare query embeddings; ``spec``, else
    ``data.preprocessor.spec``)."""
    spec = data.preprocessor.spec if spec is None and data is not None else spec
    if spec is not None and set(NEIGHBOUR_COLUMNS) & set(spec.numeric_inputs):
        return True
    return ranker.reads_embeddings


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    from ltr import __version__

    out = {"ltr": __version__, "python": platform.python_version()}
    for dist in ("torch", "numpy", "pandas", "pyarrow", "safetensors", "transformers",
                 "xgboost", "xgboost-cpu", "lightning", "pytorch-tabular"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out


def _write_embeddings(matrix: np.ndarray, path: Path) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": np.ascontiguousarray(matrix, dtype=np.float32)}, str(path))


# ---------------------------------------------------------------------- parity
def parity_requests(lists, data, max_lists: int) -> tuple[list[RankRequest], list[int]]:
    """One request per list (its query, its products, its customer) for the first
    ``max_lists`` lists."""
    reqs, index = [], []
    for g in range(min(len(lists), max_lists)):
        mask = lists.mask[g]
        if not mask.any():
            continue
        customer = None if lists.customer_id is None else lists.customer_id[g]
        reqs.append(RankRequest(data.query_texts[int(lists.query_text[g])],
                                lists.product_id[g][mask].tolist(), customer))
        index.append(g)
    return reqs, index


def _customer_record(customers: pd.DataFrame, fields: list[str],
                     customer: Any) -> dict[str, Any] | None:
    if customer is None:
        return None
    row = customers[customers["customer_id"].astype(str) == str(customer)]
    if row.empty:
        return None
    values = row.iloc[0]
    return {c: None if pd.isna(values[c]) else plain(values[c]) for c in fields}


@dataclass
class ParityCase:
    """One split's parity lists as scored in training: the requests that replay them
    through a package and the expected ``{output: scores of the valid slots}``, row-major
    (the order a package's assembled batch lays them out)."""

    name: str
    requests: list[RankRequest]
    expected: dict[str, np.ndarray]


def expected_scores(ranker, data, max_lists: int = 200,
                    customer_fields: list[str] | None = None) -> list[ParityCase]:
    """Score up to ``max_lists`` judged pools and test sessions in training
    (``ranker.score_outputs(lists, data)``). With ``customer_fields`` (a package without
    the customer table) the requests send customer records with those fields, not ids.
    Needs no package: export scores these before it frees the training data."""
    cases = []
    for name in ("pools", "test"):
        lists = getattr(data, name, None)
        if lists is None or not len(lists):
            continue
        reqs, index = parity_requests(lists, data, max_lists)
        if not reqs:
            continue
        if customer_fields is not None:
            reqs = [RankRequest(r.query, r.products, _customer_record(
                data.customers, customer_fields, r.customer)) for r in reqs]
        subset = lists.subset(index)
        scores = ranker.score_outputs(subset, data)
        cases.append(ParityCase(name, reqs, {k: np.asarray(v)[subset.mask]
                                             for k, v in scores.items()}))
    return cases


def compare_scores(cases: list[ParityCase], service, tol: float = PARITY_TOL
                   ) -> dict[str, Any]:
    """Score each case's requests through the package (``service.score_requests``, the
    code path of ``rank_batch``); return the largest differences or raise
    :class:`ParityError`."""
    report: dict[str, Any] = {"tolerance": tol}
    for case in cases:
        worst, start, want = 0.0, 0, len(case.expected["score"])
        for i in range(0, len(case.requests), PARITY_BATCH):
            batch, got = service.score_requests(case.requests[i: i + PARITY_BATCH])
            valid = batch.lists.mask  # valid slots are left-aligned, row-major
            stop = start + int(valid.sum())
            if stop > want:
                break
            for key, exp in case.expected.items():
                diff = np.abs(got[key][valid] - exp[start:stop])
                worst = max(worst, float(diff.max()) if diff.size else 0.0)
            start = stop
        if start != want:
            raise ParityError(f"the package scored other {case.name} products than training "
                              f"did ({want} in training); the package was not written")
        report[case.name] = {"lists": len(case.requests),
                             "rows": int(sum(len(r.products) for r in case.requests)),
                             "max_abs_diff": worst}
        if not worst <= tol:
            raise ParityError(f"package scores differ from the in-training scores on "
                              f"{case.name} lists by up to {worst:.3g} (> {tol}); the package "
                              "was not written")
    return report


def check_parity(ranker, data, service, max_lists: int = 200,
                 tol: float = PARITY_TOL) -> dict[str, Any]:
    """Score lists in training (``ranker.score_outputs(lists, data)``) and through the
    package (``service.rank_batch``); return the largest differences or raise."""
    fields = None
    if service.assembler.customers is None:  # exported without customers: records
        fields = [c for c in service.schema.customer_columns if c != "customer_id"]
    return compare_scores(expected_scores(ranker, data, max_lists, fields), service, tol)


def evaluation(ranker, data) -> dict[str, Any]:
    """The model on its test split, through the one evaluation engine
    (:func:`ltr.evaluation.engine.evaluate_lists`): test sessions, the judged pools of new
    queries and of known queries (with the training labels' own figures)."""
    from ltr.evaluation.engine import describe_missing, evaluate_lists

    out: dict[str, Any] = {}
    for name, lists in (("test_sessions", data.test), ("judged_pools", data.pools),
                        ("known_judged_pools", getattr(data, "known_pools", None))):
        if lists is not None and len(lists):
            out[name] = evaluate_lists(ranker.score(lists, data), lists)
    out["notes"] = describe_missing({k: 1 for part in out.values() for k in part})
    out["split"] = {"held_out_queries": len(data.held_out_queries),
                    "test_lists": 0 if data.test is None else len(data.test), "pool_lists":
                    0 if data.pools is None else len(data.pools)}
    return out


# ---------------------------------------------------------------------- export
def _release() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``),
    so that the next step's peak does not stack on memory the last one let go."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def export_package(checkpoint: str | Path, out: str | Path, *, config: str | Path | None = None,
                   data_dir: str | None = None, overwrite: bool = False,
                   copy_encoder: bool = False, include_customers: bool = True,
                   parity_lists: int = 200, onnx: bool = True, log=print,
                   key: str | bytes | None = None) -> Path:
    """Write the model package of ``checkpoint`` to ``out`` (see the module docstring).
    The manifest is signed with ``key`` or, when None, ``$LTR_PACKAGE_KEY`` if set.

    Memory: the steps run so that large things are never held together. From a fitted
    pipeline, the text step comes first (the ONNX copy of the encoder, then the catalog
    embeddings from the embedding cache; the encoder is freed after), before the
    pipeline is loaded; then the tables are written, the parity lists scored in training
    and the model evaluated; the training data is freed, and only then is the package
    loaded as a service to score the same requests. Freed memory is handed back to the
    OS between steps (:func:`_release`)."""
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError("--out", f"{out} already exists; pass --overwrite to replace it")
    ranker = load_trained(checkpoint)
    # what is alive now (the imported libraries, the model) lives to the end: the garbage
    # collections between steps then walk only what the steps create (~0.5 s less each)
    freeze = gc.get_freeze_count() == 0  # not when the caller froze objects itself
    if freeze:
        gc.freeze()
    # Arrow buffers from the system allocator, which _release can trim (Arrow's default
    # mimalloc pool kept ~20 MiB of freed table buffers resident)
    arrow_pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return _export(checkpoint, out, ranker, config, data_dir, copy_encoder,
                       include_customers, parity_lists, onnx, log, key, t0)
    finally:
        pa.set_memory_pool(arrow_pool)
        if freeze:
            gc.unfreeze()


def _export(checkpoint, out: Path, ranker, config, data_dir, copy_encoder: bool,
            include_customers: bool, parity_lists: int, onnx: bool, log, key,
            t0: float) -> Path:
    from ltr.serving.service import RankingService

    with atomic_dir(out) as tmp:
        dm = plan = None
        folder = None if config is not None else _pipeline_folder(checkpoint, ranker)
        settings = _pipeline_settings(folder, ranker) if folder is not None else None
        if settings is not None:
            # the text step first, from the pipeline's text settings: its peaks (torch
            # writing the ONNX encoder, reading the embedding cache) then stack on the
            # model alone, not on the training data or what it left behind
            plan = _text_plan(ranker, settings.get("text"),
                              Preprocessor.from_dict(ranker.preprocessor_).spec)
            if plan.uses_texts:
                log("writing the text encoder and the catalog embeddings")
                with step("wrote the text encoders and the catalog embeddings"):
                    _text_step(tmp, ranker, None, plan, Path(data_dir or settings["data_dir"]),
                               copy_encoder, onnx)
                _release()
        if folder is not None:  # the fitted artifacts: no data preparation
            from ltr.features.pipeline import FittedPipeline

            with step("read the pipeline, the catalog and the customers"):
                pipeline = FittedPipeline.load(folder)
                log("reading the fitted feature pipeline and the catalog "
                    f"({data_dir or pipeline.data_dir})")
                data, args = pipeline_data(pipeline, ranker, data_dir)
            del pipeline
        else:
            args = data_arguments(ranker, config, data_dir)
            log(f"preparing the training data again ({args.get('data_dir')})")
            with step("prepared the training data"):
                dm, data = prepared_data(args)
        _check_preprocessor(ranker.preprocessor_, data.preprocessor.to_dict())
        if ranker.preprocessor_ is None:
            ranker.preprocessor_ = data.preprocessor.to_dict()
        ranker.data_config_ = ranker.data_config_ or dict(args)
        text_done = plan is not None
        if plan is None:
            plan = _text_plan(ranker, data.text, data.preprocessor.spec)
        plan.query_texts = list(data.query_texts)
        texts = [] if text_done or not plan.embeddings else _catalog_texts(plan, data.products)

        with step("wrote the model and its tables"):
            customer_columns = _write_tables(tmp, ranker, data, args, include_customers, plan)
        with step("scored the parity lists and evaluated the model in training"):
            fields = None if include_customers else \
                [c for c in customer_columns if c != "customer_id"]
            cases = expected_scores(ranker, data, parity_lists, fields)
            metrics: dict[str, Any] = {"evaluation": evaluation(ranker, data)}
        info = {
            "kind": ranker.kind, "outputs": list(ranker.output_names),
            "tasks": list(data.tasks),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": _versions(),
            "source": {"checkpoint": str(checkpoint), "data_dir": args.get("data_dir")},
            "summary": {"catalog_products": int(len(data.products)),
                        "known_queries": len(data.query_texts),
                        "customers": int(len(data.customers)) if include_customers else 0,
                        "text": _uses_embeddings(ranker, data) or ranker.reads_texts},
        }
        encoder = None if dm is None else dm._encoder
        del data, dm  # everything the package needs from them is written
        _release()
        if plan.uses_texts and not text_done:
            with step("wrote the text encoders and the catalog embeddings"):
                _text_step(tmp, ranker, encoder, plan, texts, copy_encoder, onnx)
        del encoder, plan, texts  # the service loads its own: one encoder at a time
        _release()
        _normal_permissions(tmp)
        write_manifest(tmp, info)  # provisional: lets the service load the folder
        log("checking the package against the in-training scores")
        # the parity requests carry known queries and catalog products only: every
        # embedding comes from the package's tables and no text is encoded, so the ONNX
        # encoder (loaded and checked against PyTorch when written) is left out here
        service = RankingService(tmp, verify=False, use_onnx=False)
        _release()  # what loading the service built and dropped (the token index's sets)
        with step("checked parity"):
            metrics["parity"] = compare_scores(cases, service)
        write_json(metrics, tmp / layout.METRICS)
        write_manifest(tmp, info, key=key)
        del service
        _release()
        verify_package(tmp, key=key)  # every file against the final manifest, as a service checks it
    log(f"wrote {out} in {time.perf_counter() - t0:.1f}s")
    return out


def _pipeline_settings(folder: Path, ranker) -> dict[str, Any] | None:
    """``pipeline.json`` of a fitted pipeline (its text settings and data folder), when
    the text step can run before the pipeline is loaded: the model carries its
    preprocessing (which features it reads) and does not fine-tune its text encoder
    (that step reads the training queries)."""
    from ltr.features.pipeline import FORMAT_VERSION

    module = getattr(ranker, "module_", None)
    if ranker.preprocessor_ is None or getattr(module, "tunes_text", False):
        return None
    settings = read_json(folder / "pipeline.json")
    if settings.get("format_version") != FORMAT_VERSION:
        return None  # FittedPipeline.load says what is wrong
    return settings


def _normal_permissions(folder: Path) -> None:
    """Readable by everyone, as files written by ltr elsewhere (mkdtemp and some writers
    create owner-only files)."""
    mask = current_umask()
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@dataclass
class _TextPlan:
    """What the package holds of text, decided from the model and its text settings (no
    training data needed)."""

    config: Any  # ltr.text.TextConfig, or None
    fields: list[str]  # title first, then the product text fields ([] without texts)
    separator: str
    uses_texts: bool
    embeddings: bool
    query_texts: list[str] = field(default_factory=list)  # for a fine-tuned text encoder
    catalog_ids: list[Any] | None = None  # the catalog the embeddings were written for


def _text_plan(ranker, text: dict[str, Any] | None, spec) -> _TextPlan:
    from ltr.text import TextConfig

    embeddings = _uses_embeddings(ranker, spec=spec)
    uses_texts = embeddings or ranker.reads_texts
    cfg = TextConfig.from_mapping(text, "data.text") if text else None
    if embeddings and cfg is None:
        raise ConfigError("data.text", f"the '{ranker.kind}' model uses text but its data "
                          "settings have none")
    fields = [TITLE, *(cfg.product_fields if cfg else ())] if uses_texts else []
    return _TextPlan(cfg, fields, cfg.product_separator if cfg else " | ", uses_texts,
                     embeddings)


def _catalog_texts(plan: _TextPlan, products: pd.DataFrame) -> list[str]:
    """The text of each catalog product, in catalog order (what its embedding encodes)."""
    from ltr.text import product_text

    return product_text(products, plan.fields[1:], title_column=TITLE,
                        separator=plan.separator).astype(str).tolist()


def _write_tables(folder: Path, ranker, data, args: dict[str, Any], include_customers: bool,
                  plan: _TextPlan) -> list[str]:
    """Everything but the text encoders and the catalog embeddings (:func:`_text_step`);
    returns the customer columns."""
    if plan.embeddings and data.query_embeddings is None:
        raise ConfigError("data.text", f"the '{ranker.kind}' model uses text but its data "
                          "settings have none")
    if plan.catalog_ids is not None and data.products["product_id"].tolist() != plan.catalog_ids:
        raise DataValidationError(str(args.get("data_dir")), "the catalog changed while the "
                                  "package was written; export again")
    fields = plan.fields
    schema = build_schema(data, fields, plan.separator)

    # the package holds the pipeline's parts in its own layout, not a second copy
    ranker.save(folder / layout.MODEL_DIR, pipeline=False)
    write_json(schema.to_dict(), folder / layout.FEATURES)
    write_json(args, folder / layout.DATA_CONFIG)
    catalog_cols = list(dict.fromkeys([*schema.product_columns, *fields]))
    write_table(data.products[catalog_cols].reset_index(drop=True), folder / layout.CATALOG)
    if include_customers:
        write_table(data.customers[schema.customer_columns].reset_index(drop=True),
                    folder / layout.CUSTOMERS)
    pairs, products = data.history
    write_table(pairs.reset_index(drop=True), folder / layout.PAIR_HISTORY)
    write_table(products.reset_index(drop=True), folder / layout.PRODUCT_HISTORY)
    nn = getattr(data, "neighbours", None)
    if nn is not None and set(NEIGHBOUR_COLUMNS) & set(data.preprocessor.spec.numeric_inputs):
        nn.save(folder / layout.NEIGHBOUR_DIR)
    if plan.embeddings:
        write_table(pd.DataFrame({"query": data.query_texts}), folder / layout.QUERIES)
        _write_embeddings(data.query_embeddings, folder / layout.QUERY_EMBEDDINGS)
    return list(schema.customer_columns)


def _text_step(folder: Path, ranker, encoder, plan: _TextPlan, catalog: list[str] | Path,
               copy_encoder: bool, onnx: bool) -> None:
    """``text/text.json``, the encoder (referenced or copied), its ONNX copy, the
    fine-tuned encoder of a model that tuned one, and the catalog embeddings: of the
    texts ``catalog``, or of the catalog of the data folder ``catalog``, read after the
    ONNX copy is written (its ids go to ``plan.catalog_ids``). Loads the encoder when
    ``encoder`` is None, and then frees it before the catalog rows are laid out."""
    text_info: dict[str, Any] = {"embeddings": plan.embeddings,
                                 "product_fields": plan.fields[1:],
                                 "product_separator": plan.separator}
    if plan.embeddings:
        from ltr.serving.encoder import encoder_reference
        from ltr.serving.onnx_encoder import ONNX_FILE, OPSET, export_onnx, onnx_available

        if encoder is None:
            from ltr.text import TextEncoder

            encoder = TextEncoder.from_config(plan.config)
        text_info.update(encoder_reference(encoder, plan.config, copy_encoder, folder,
                                           layout.ENCODER_DIR))
        text_info["embeddings"] = True
        if onnx and onnx_available():
            diff = export_onnx(encoder, folder / ONNX_FILE)
            text_info["onnx"] = {"path": ONNX_FILE, "opset": OPSET, "max_abs_diff": diff}
            _release()  # torch's ONNX writer held the graph three times over
        module = getattr(ranker, "module_", None)
        if isinstance(catalog, Path):
            products = _products(catalog)
            plan.catalog_ids = products["product_id"].tolist()
            texts = _catalog_texts(plan, products)
            del products
            _release()
        else:
            texts = catalog
        if module is not None and module.tunes_text:
            text_info["tuned"] = _write_tuned_text(folder, module, encoder, plan.query_texts,
                                                   texts, onnx)
        encoded = encoder.encode_texts(texts)
        del texts, encoder  # an encoder loaded here goes, with the embedding cache it read
        _release()
        _write_catalog_embeddings(encoded, folder / layout.PRODUCT_EMBEDDINGS)
    write_json(text_info, folder / layout.TEXT)


def _write_catalog_embeddings(encoded, path: Path) -> None:
    """One row per catalog product, from ``encoder.encode_texts`` of the catalog texts
    (distinct texts, the usual case, need no row-aligned copy)."""
    n = len(encoded.inverse)
    same = len(encoded.embeddings) == n and np.array_equal(encoded.inverse, np.arange(n))
    _write_embeddings(encoded.embeddings if same else encoded.rows(), path)


def _write_tuned_text(folder: Path, module, encoder, query_texts: list[str],
                      catalog_texts: list[str], onnx: bool) -> dict[str, Any]:
    """The fine-tuned encoder of a model (safetensors + tokenizer), its embeddings of every
    known query and, for a shared tower, of the whole catalog (recomputed), and the ONNX
    encoder pair that serves unseen texts with one pass over the shared bottom."""
    from ltr.rankers.mmoe import save_tuned_encoder
    from ltr.serving.onnx_encoder import (
        OPSET,
        PAIR_ONNX_FILE,
        export_pair_onnx,
        onnx_available,
        same_bottom,
    )

    tuned = module.tuned_encoder
    tower = module.hparams.tuned_tower
    info: dict[str, Any] = {"tower": tower, "layers": int(module.hparams.trainable_layers),
                            "encoder": save_tuned_encoder(tuned, folder /
                                                          layout.TUNED_ENCODER_DIR)}
    queries, products = module.tuned_vectors(list(query_texts),
                                             catalog_texts if tower == "shared" else None)
    _write_embeddings(queries, folder / layout.TUNED_QUERY_EMBEDDINGS)
    if products is not None:
        _write_embeddings(products, folder / layout.TUNED_PRODUCT_EMBEDDINGS)
    k = int(module.hparams.trainable_layers)
    if onnx and onnx_available() and same_bottom(encoder, tuned, k):
        diff = export_pair_onnx(encoder, tuned, k, folder / PAIR_ONNX_FILE)
        info["onnx"] = {"path": PAIR_ONNX_FILE, "opset": OPSET, "max_abs_diff": diff}
    return info
