"""Model packages: export, verification, parity with training, requests, threads."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from ltr.errors import ConfigError, DataValidationError
from ltr.serving import RankingService, RequestError, export_package
from ltr.serving.manifest import write_manifest
from tests.serving.conftest import KINDS


def _pool_requests(data, n: int = 10):
    from ltr.serving.export import parity_requests

    return parity_requests(data.pools, data, n)


@pytest.mark.parametrize("kind", list(KINDS))
def test_package_scores_equal_training_scores(kind, packages, serving_data):
    """Every model type: the package ranks the judged pools and test sessions (customer
    included) with exactly the in-training scores, per product."""
    _, data = serving_data
    ranker, folder = packages[kind]
    service = RankingService(folder)
    assert service.kind == kind
    for lists in (data.pools, data.test):
        from ltr.serving.export import parity_requests

        reqs, index = parity_requests(lists, data, 25)
        expected = ranker.score_outputs(lists.subset(index), data)
        for r, (req, g) in enumerate(zip(reqs, index, strict=True)):
            got = service.rank(req.query, req.products, req.customer)
            by_id = {p.product_id: p for p in got.products}
            slots = np.flatnonzero(lists.mask[g])
            for j in slots:
                item = by_id[lists.product_id[g, j]]
                assert item.score == pytest.approx(expected["score"][r, j], abs=1e-5)
                for name, value in item.outputs.items():
                    assert value == pytest.approx(expected[name][r, j], abs=1e-5)
            scores = [p.score for p in got.products]
            assert scores == sorted(scores, reverse=True)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["parity"]["pools"]["max_abs_diff"] <= 1e-4
    assert "human_ndcg@10" in metrics["evaluation"]["judged_pools"]


def test_mmoe_outputs_every_task(packages):
    service = RankingService(packages["mmoe"][1])
    ranking = service.rank("oak dining table", service.catalog.columns["product_id"][:5].tolist())
    assert set(ranking.products[0].outputs) == {"click", "add_to_cart", "purchase", "relevance"}
    assert service.outputs == ["click", "add_to_cart", "purchase", "relevance"]
    assert RankingService(packages["xgboost"][1]).outputs == ["relevance"]


def test_package_holds_no_pickle_and_lists_every_file(packages):
    for kind, (_, folder) in packages.items():
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert files - {"manifest.json"} == set(manifest["files"]), kind
        for rel in files:
            assert not rel.endswith((".pkl", ".pickle", ".pt", ".bin", ".ckpt")), rel
            head = (folder / rel).read_bytes()[:2]
            assert head[:1] != b"\x80", f"{rel} looks like a pickle"
        assert {"ltr", "torch", "numpy"} <= set(manifest["versions"])


def test_changed_or_missing_file_is_refused_by_name(packages, tmp_path):
    folder = shutil.copytree(packages["xgboost"][1], tmp_path / "pkg")
    model = folder / "model" / "model.json"
    model.write_bytes(model.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(DataValidationError, match="model.json.*changed"):
        RankingService(folder)
    model.unlink()
    with pytest.raises(DataValidationError, match="model.json.*missing"):
        RankingService(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(DataValidationError, match="manifest.json"):
        RankingService(folder)
    with pytest.raises(DataValidationError, match="no manifest.json"):
        RankingService(tmp_path)


def test_copied_encoder_is_checked_against_its_fingerprint(packages, tmp_path):
    folder = shutil.copytree(packages["cosine"][1], tmp_path / "pkg")
    text = json.loads((folder / "text" / "text.json").read_text())
    assert text["weights"] == {"path": "text/encoder"}  # a local model: copied
    assert (folder / "text" / "encoder" / "model.safetensors").exists()
    from safetensors.numpy import load_file, save_file

    path = folder / "text" / "encoder" / "model.safetensors"
    weights = load_file(str(path))
    name = next(iter(weights))
    weights[name] = weights[name] + 1.0
    save_file(weights, str(path))
    manifest = json.loads((folder / "manifest.json").read_text())
    write_manifest(folder, {k: v for k, v in manifest.items()
                            if k not in ("format", "format_version", "files")})
    with pytest.raises(DataValidationError, match="fingerprint"):
        RankingService(folder)


def test_requests_ids_records_customers_and_top_k(packages, serving_data):
    _, data = serving_data
    service = RankingService(packages["mmoe"][1])
    reqs, _ = _pool_requests(data, 1)
    req = reqs[0]
    base = service.rank(req.query, req.products)
    assert len(base.products) == len(req.products)
    # ids as strings, top_k, customers as id / record / unknown id
    as_str = service.rank(req.query, [str(p) for p in req.products], top_k=3)
    assert [p.product_id for p in as_str.products] == base.product_ids[:3]
    cust_id = service.assembler.customers.columns["customer_id"][0]
    known = service.rank(req.query, req.products, customer=cust_id)
    record = {c: service.assembler.customers.columns[c][0]
              for c in service.schema.customer_columns if c != "customer_id"}
    record = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
    as_record = service.rank(req.query, req.products, customer=record)
    assert [p.score for p in known.products] == pytest.approx([p.score for p in
                                                              as_record.products], abs=1e-6)
    unknown = service.rank(req.query, req.products, customer=10**9)
    assert [p.score for p in unknown.products] == [p.score for p in base.products]
    # a full record of a catalog product scores like its id (text re-encoded on the fly)
    pid = req.products[0]
    row = service.catalog.index[str(pid)]
    rec = {c: service.catalog.columns[c][row] for c in service.catalog.columns}
    rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
    via_record = service.rank(req.query, [rec, *req.products[1:]])
    want = {p.product_id: p.score for p in base.products}
    got = {p.product_id: p.score for p in via_record.products}
    assert got[pid] == pytest.approx(want[pid], abs=1e-4)
    # an unseen product with only a title: encoded, defaults for the rest
    new = service.rank(req.query, [*req.products, {"product_id": "new-1",
                                                   "title": "modern oak table"}])
    assert "new-1" in new.product_ids and service.text.encoded >= 1
    assert np.isfinite([p.score for p in new.products]).all()


def test_unseen_query_is_encoded(packages):
    service = RankingService(packages["cosine"][1])
    ids = service.catalog.columns["product_id"][:4].tolist()
    first = service.rank("a query nobody typed", ids)
    assert service.text.encoded == 1
    again = service.rank("a query nobody typed", ids)  # cached
    assert service.text.encoded == 1
    assert first.to_dict() == again.to_dict()


@pytest.mark.parametrize("kwargs,field", [
    ({"query": "", "products": [1]}, "query"),
    ({"query": "bed", "products": []}, "products"),
    ({"query": "bed", "products": "123"}, "products"),
    ({"query": "bed", "products": [-12345]}, "products[0]"),
    ({"query": "bed", "products": [3.5]}, "products[0]"),
    ({"query": "bed", "products": [{"title": "x"}]}, "products[0].product_id"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "price": "cheap"}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "colour": "red"}]},
     "products[0].colour"),
    ({"query": "bed", "products": [{"product_id": "n", "price": 3.0}]}, "products[0].title"),
    ({"query": "bed", "products": ["FIRST", "FIRST"]}, "products[1]"),
    ({"query": "bed", "products": ["FIRST"], "top_k": 0}, "top_k"),
    ({"query": "bed", "products": ["FIRST"], "customer": [1]}, "customer"),
    ({"query": "bed", "products": ["FIRST"], "customer": {"segment": {"a": 1}}},
     "customer.segment"),
    # values outside the catalog contract, numbers that do not fit, text that is not Unicode
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "price": -5}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "price": float("inf")}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "price": 10**400}]},
     "products[0].price"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x", "rating": 50}]},
     "products[0].rating"),
    ({"query": "bed \ud800", "products": ["FIRST"]}, "query"),
    ({"query": "bed", "products": [{"product_id": "n", "title": "x \udfff"}]},
     "products[0].title"),
])
def test_invalid_requests_name_the_field(kwargs, field, packages):
    service = RankingService(packages["mmoe"][1])
    first = service.catalog.columns["product_id"][0]
    kwargs = {**kwargs, "products": [first if p == "FIRST" else p for p in kwargs["products"]]
              if isinstance(kwargs["products"], list) else kwargs["products"]}
    with pytest.raises(RequestError) as err:
        service.rank(**kwargs)
    assert err.value.field == field
    assert field in str(err.value)


def test_batch_equals_single_requests_and_names_the_request(packages, serving_data):
    _, data = serving_data
    service = RankingService(packages["dcnv2"][1])
    reqs, _ = _pool_requests(data, 5)
    batch = service.rank_batch([{"query": r.query, "products": r.products} for r in reqs])
    for r, ranking in zip(reqs, batch, strict=True):
        single = service.rank(r.query, r.products)
        assert ranking.product_ids == single.product_ids
        assert [p.score for p in ranking.products] == pytest.approx(
            [p.score for p in single.products], abs=1e-6)
    with pytest.raises(RequestError, match=r"requests\[1\].products\[0\]"):
        service.rank_batch([{"query": "bed", "products": reqs[0].products},
                            {"query": "bed", "products": [-1]}])
    with pytest.raises(RequestError, match=r"requests\[0\].colour"):
        service.rank_batch([{"query": "bed", "products": [1], "colour": 1}])


@pytest.mark.parametrize("kind", ["mmoe", "xgboost"])
def test_concurrent_callers_get_the_sequential_answers(kind, packages, serving_data):
    _, data = serving_data
    service = RankingService(packages[kind][1])
    reqs, _ = _pool_requests(data, 8)
    queries = [f"{r.query} extra {i}" for i, r in enumerate(reqs)]  # some need encoding
    expected = [service.rank(r.query, r.products).to_dict() for r in reqs]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            out = []
            for _ in range(10):
                out.append(service.rank(reqs[i].query, reqs[i].products).to_dict())
                service.rank(queries[i], reqs[i].products)
            results[i] = out
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, outs in results.items():
        for out in outs:
            assert out["products"] == expected[i]["products"] or all(
                a["product_id"] == b["product_id"] and abs(a["score"] - b["score"]) < 1e-6
                for a, b in zip(out["products"], expected[i]["products"], strict=True))


def test_export_refuses_to_overwrite_and_keeps_the_old_package(packages, serving_data,
                                                                tmp_path, tiny_log_dir):
    ranker, folder = packages["xgboost"]
    saved = ranker.save(tmp_path / "model")
    with pytest.raises(ConfigError, match="already exists"):
        export_package(saved, folder, log=lambda *_: None)
    # a catalog that lacks a column the fitted preprocessing reads: refused, naming the
    # column, and the existing package is untouched
    other = shutil.copytree(tiny_log_dir, tmp_path / "other")
    import pandas as pd

    prods = pd.read_parquet(other / "products.parquet").drop(columns=["price"])
    prods.to_parquet(other / "products.parquet", index=False)
    before = (folder / "manifest.json").read_text()
    with pytest.raises(DataValidationError, match="price"):
        export_package(saved, folder, data_dir=str(other), overwrite=True, log=lambda *_: None)
    assert (folder / "manifest.json").read_text() == before
    RankingService(folder)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]


def test_package_without_customers_takes_customer_records(packages, serving_data, tmp_path):
    _, data = serving_data
    ranker, _ = packages["xgboost"]
    saved = ranker.save(tmp_path / "model")
    folder = export_package(saved, tmp_path / "pkg", include_customers=False,
                            log=lambda *_: None)  # parity with customers sent as records
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["parity"]["test"]["max_abs_diff"] <= 1e-4
    assert not (folder / "customers.parquet").exists()
    service = RankingService(folder)
    reqs, _ = _pool_requests(data, 1)
    with pytest.raises(RequestError, match="without its customer table") as err:
        service.rank(reqs[0].query, reqs[0].products, customer=7)
    assert err.value.field == "customer"
    ranking = service.rank(reqs[0].query, reqs[0].products, customer={"segment": "budget"})
    assert len(ranking.products) == len(reqs[0].products)


def test_onnx_encoder_encodes_like_pytorch(packages, tmp_path, monkeypatch):
    folder = packages["mmoe"][1]
    text = json.loads((folder / "text" / "text.json").read_text())
    assert text["onnx"]["path"] == "text/query_encoder.onnx"
    assert text["onnx"]["max_abs_diff"] <= 1e-4
    fast = RankingService(folder)
    slow = RankingService(folder, use_onnx=False)
    assert fast.text.onnx is not None and slow.text.onnx is None
    probe = ["oak bed", "a much longer query about a red velvet sofa for two", "x"]
    np.testing.assert_allclose(fast.text.encode(probe), slow.text.encode(probe), atol=1e-5)
    ids = fast.catalog.columns["product_id"][:8].tolist()
    a = fast.rank("never seen before query", ids)
    b = slow.rank("never seen before query", ids)
    assert a.product_ids == b.product_ids
    np.testing.assert_allclose([p.score for p in a.products], [p.score for p in b.products],
                               atol=1e-4)
    # without onnx/onnxruntime, or with onnx=False, the package has no ONNX file
    import ltr.serving.onnx_encoder as onnx_encoder

    monkeypatch.setattr(onnx_encoder, "onnx_available", lambda: False)
    ranker, _ = packages["cosine"]
    plain = export_package(ranker.save(tmp_path / "m"), tmp_path / "p", parity_lists=5,
                           log=lambda *_: None)
    assert not (plain / "text" / "query_encoder.onnx").exists()
    assert RankingService(plain).text.onnx is None


def test_export_with_a_config_prepares_again_and_refuses_other_preprocessing(
        packages, tmp_path, tiny_log_dir):
    """--config forces the data preparation (no fitted pipeline): a data folder whose
    catalog fits other preprocessing is refused."""
    import pandas as pd
    import yaml

    ranker, _ = packages["xgboost"]
    saved = ranker.save(tmp_path / "model")
    other = shutil.copytree(tiny_log_dir, tmp_path / "other")
    prods = pd.read_parquet(other / "products.parquet")
    prods["price"] = prods["price"] * 2
    prods.to_parquet(other / "products.parquet", index=False)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {**ranker.data_config_, "data_dir": str(other)}}))
    with pytest.raises(DataValidationError, match="preprocessing"):
        export_package(saved, tmp_path / "pkg", config=config, log=lambda *_: None)
    assert not (tmp_path / "pkg").exists()
