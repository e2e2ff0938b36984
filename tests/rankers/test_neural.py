"""Neural baselines (DCN-V2, TabNet, FT-Transformer) behind the common ranker interface."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.io import write_json
from ltr.metrics import ndcg
from ltr.models.dcnv2 import DCNV2, CrossLayer, CrossNetwork
from ltr.rankers.base import load_ranker, make_ranker, ranker_inputs
from ltr.training.lists import ListData
from ltr.training.module import LtrModule

L, F = 10, 3
CARDS = [6, 5]  # codes 0 missing, 1 unknown, vocabulary from 2

# small settings: the whole file must stay well under a minute on a busy 2-core machine
FAST = {
    "dcnv2": {"lr": 1e-2, "arch": {"deep": [16], "n_cross": 2}},
    "tabnet": {"lr": 2e-2, "arch": {"n_d": 8, "n_a": 8, "n_steps": 2}},
    "ft_transformer": {"lr": 5e-3, "arch": {"input_embed_dim": 8, "num_heads": 2,
                                            "num_attn_blocks": 1, "attn_dropout": 0.0,
                                            "ff_dropout": 0.0, "add_norm_dropout": 0.0}},
}
NAMES = list(FAST)


def make_lists(n: int, rng: np.random.Generator, width: int = L) -> ListData:
    """``n`` lists of 6..10 real slots padded to ``width``; the grade follows numeric
    feature 0 and categorical code 3 of column 0, plus noise."""
    sizes = rng.integers(6, L + 1, size=n)
    mask = np.arange(width)[None, :] < sizes[:, None]
    numeric = rng.normal(size=(n, width, F)).astype(np.float32)
    categorical = np.stack([rng.integers(0, c, size=(n, width)) for c in CARDS], axis=-1)
    signal = 1.2 * numeric[..., 0] + 2.0 * (categorical[..., 0] == 3)
    grade = np.clip(np.round(signal + 0.3 * rng.normal(size=(n, width)) + 1.0), 0, 4)
    numeric[~mask] = 0.0
    categorical[~mask] = 0
    return ListData(keys=np.arange(n), numeric=numeric, categorical=categorical.astype(np.int64),
                    query_text=np.zeros(n, np.int64), product_text=np.zeros((n, width), np.int64),
                    position=np.where(mask, np.arange(1, width + 1), 0), mask=mask,
                    product_id=np.where(mask, 1, None).astype(object),
                    labels={"relevance": np.where(mask, grade, np.nan).astype(np.float32)})


@pytest.fixture(scope="module")
def data() -> SimpleNamespace:
    rng = np.random.default_rng(0)
    return SimpleNamespace(train=make_lists(120, rng), valid=make_lists(30, rng),
                           test=make_lists(30, rng),
                           preprocessor=SimpleNamespace(numeric_width=F, cardinalities=CARDS),
                           query_embeddings=None, product_embeddings=None)


@pytest.fixture(scope="module")
def fitted(data) -> dict:
    """Each ranker fitted once (lazily) and shared by the tests below."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            params = {"max_epochs": 8, "patience": 3, "batch_size": 16, "use_text": False,
                      "seed": 0, **FAST[name]}
            cache[name] = make_ranker(name, params).fit(data)
        return cache[name]

    return get


def _ndcg(scores: np.ndarray, lists: ListData) -> float:
    y = lists.labels["relevance"]
    return ndcg(np.nan_to_num(scores, nan=-np.inf), np.nan_to_num(y), lists.mask, k=10).mean


@pytest.mark.parametrize("name", NAMES)
def test_fit_beats_random_ordering(name, data, fitted):
    ranker = fitted(name)
    scores = ranker.score(data.test, data)
    assert scores.shape == data.test.mask.shape
    assert np.isnan(scores[~data.test.mask]).all()
    assert np.isfinite(scores[data.test.mask]).all()
    rng = np.random.default_rng(1)
    rand = np.mean([_ndcg(rng.random(data.test.mask.shape), data.test) for _ in range(20)])
    got = _ndcg(scores, data.test)
    assert got > rand + 0.1, (name, got, rand)
    # the kept weights are the best validation epoch's: their validation NDCG@10 is the
    # best score seen during training (not the score of the epoch before them)
    assert _ndcg(ranker.score(data.valid, data), data.valid) == pytest.approx(
        ranker.best_score_, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_scores(name, data, fitted, tmp_path):
    ranker = fitted(name)
    back = load_ranker(ranker.save(tmp_path / name))
    assert type(back) is type(ranker) and back.kind == name
    assert back.params["arch"] == ranker.params["arch"]
    np.testing.assert_array_equal(back.score(data.test, data), ranker.score(data.test, data))


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name, data, fitted):
    """The same lists padded wider (with junk in the padded slots) score the same."""
    ranker = fitted(name)
    lists = data.test
    extra = 5
    rng = np.random.default_rng(2)

    def widen(a: np.ndarray, junk: np.ndarray) -> np.ndarray:
        return np.concatenate([a, junk.astype(a.dtype)], axis=1)

    g = len(lists)
    wide = ListData(
        keys=lists.keys,
        numeric=widen(lists.numeric, rng.normal(size=(g, extra, F)) * 5),
        categorical=widen(lists.categorical, rng.integers(0, 5, size=(g, extra, len(CARDS)))),
        query_text=lists.query_text,
        product_text=widen(lists.product_text, np.zeros((g, extra))),
        position=widen(lists.position, np.zeros((g, extra))),
        mask=widen(lists.mask, np.zeros((g, extra), bool)),
        product_id=widen(lists.product_id, np.full((g, extra), None, object)),
        labels={k: widen(v, np.full((g, extra), np.nan)) for k, v in lists.labels.items()})
    narrow_scores = ranker.score(lists, data)
    wide_scores = ranker.score(wide, data)
    assert np.isnan(wide_scores[:, L:]).all()
    np.testing.assert_allclose(wide_scores[:, :L][lists.mask], narrow_scores[lists.mask],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_trains_through_the_lightning_module(name, fitted, tmp_path):
    """One training stack: the ranker's model is an LtrModule with this kind's
    single-score backbone, saved as the MMoE's are (module.json + weights)."""
    ranker = fitted(name)
    module = ranker.module_
    assert isinstance(module, LtrModule) and module.single_score
    assert module.hparams.backbone == name and module.tasks == ["relevance"]
    assert module.hparams.backbone_args == ranker.params["arch"]
    assert module.hparams.losses == {"relevance": "lambda_ndcg"}
    assert ranker.output_names == ("relevance",)
    folder = ranker.save(tmp_path / name)
    assert (folder / "module.json").exists() and not (folder / "dims.json").exists()


@pytest.mark.parametrize("name", NAMES)
def test_folders_of_the_earlier_layout_still_load(name, data, fitted, tmp_path):
    """Folders written before the single-score rankers trained through LtrModule
    (``dims.json`` + the bare backbone's weights, e.g. inside exported packages) load and
    score the same."""
    from safetensors.torch import save_file

    ranker = fitted(name)
    folder = ranker.save(tmp_path / name)
    (folder / "module.json").unlink()
    write_json({"n_numeric": F, "cardinalities": CARDS}, folder / "dims.json")
    save_file({k: v.clone() for k, v in ranker.module_.scorer.state_dict().items()},
              str(folder / "weights.safetensors"))
    back = load_ranker(folder)
    np.testing.assert_array_equal(back.score(data.test, data), ranker.score(data.test, data))


def test_with_text_the_cosine_is_one_more_numeric_column(data):
    """``use_text``: the backbone sees :func:`ranker_inputs` (the query-product cosine
    appended to the numeric features), in training and scoring."""
    rng = np.random.default_rng(3)

    def with_products(lists: ListData) -> ListData:
        return dataclasses.replace(lists, product_text=np.where(
            lists.mask, rng.integers(0, 20, lists.mask.shape), 0))

    text = SimpleNamespace(**{
        **vars(data), "train": with_products(data.train), "valid": with_products(data.valid),
        "test": with_products(data.test),
        "query_embeddings": rng.normal(size=(1, 8)).astype(np.float32),
        "product_embeddings": rng.normal(size=(20, 8)).astype(np.float32)})
    ranker = make_ranker("dcnv2", {"max_epochs": 2, "batch_size": 16, **FAST["dcnv2"]})
    ranker.fit(text)
    assert ranker.params["use_text"] and ranker.reads_embeddings
    numeric, categorical = ranker_inputs(text.test, text, True)
    assert numeric.shape[-1] == F + 1
    g, width = text.test.mask.shape
    with torch.no_grad():
        rows = ranker.module_.scorer(torch.from_numpy(numeric.reshape(g * width, -1)),
                                     torch.from_numpy(categorical.reshape(g * width, -1)))
    scores = ranker.score(text.test, text)
    m = text.test.mask
    np.testing.assert_allclose(scores[m], rows.numpy().reshape(g, width)[m], rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ConfigError, match="no text embeddings"):
        ranker.score(text.test, data)


# ---------------------------------------------------------------------- DCN-V2 module
def test_dcnv2_module_shapes_and_structures():
    torch.manual_seed(0)
    numeric, categorical = torch.randn(7, F), torch.randint(0, 5, (7, len(CARDS)))
    for structure in ("stacked", "parallel"):
        model = DCNV2(F, CARDS, n_cross=3, rank=2, deep=[8], structure=structure)
        out = model(numeric, categorical)
        assert out.shape == (7,) and torch.isfinite(out).all()
    cross_only = DCNV2(F, CARDS, deep=[])
    assert cross_only.out.in_features == cross_only.encoder.out_dim
    torch.manual_seed(0)
    a = DCNV2(F, CARDS)(numeric, categorical)
    torch.manual_seed(0)
    b = DCNV2(F, CARDS)(numeric, categorical)
    torch.testing.assert_close(a, b)  # seeded construction is reproducible


@pytest.mark.parametrize("rank", [None, 3])
def test_zero_cross_weights_are_the_identity(rank):
    torch.manual_seed(0)
    net = CrossNetwork(6, n_layers=3, rank=rank)
    x0 = torch.randn(4, 6)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    torch.testing.assert_close(net(x0), x0)
    # and with weights: x1 = x0 * (W x0 + b) + x0, by hand
    layer = CrossLayer(6, rank)
    w = layer.linear.weight if rank is None else layer.linear[1].weight @ layer.linear[0].weight
    b = layer.linear.bias if rank is None else layer.linear[1].bias
    torch.testing.assert_close(layer(x0, x0), x0 * (x0 @ w.T + b) + x0)


def test_low_rank_parameter_count():
    d, r = 20, 4
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(CrossLayer(d)) == d * d + d
    assert count(CrossLayer(d, rank=r)) == 2 * d * r + d


# ---------------------------------------------------------------------- config errors
@pytest.mark.parametrize("name,arch,key", [
    ("dcnv2", {"structure": "diagonal"}, "model.params.arch.structure"),
    ("dcnv2", {"n_cross": 0}, "model.params.arch.n_cross"),
    ("dcnv2", {"rank": 1.5}, "model.params.arch.rank"),
    ("dcnv2", {"deep": [16, -1]}, "model.params.arch.deep"),
    ("dcnv2", {"structure": "parallel", "deep": []}, "model.params.arch.deep"),
    ("dcnv2", {"dropout": 1.0}, "model.params.arch.dropout"),
    ("dcnv2", {"crosses": 2}, "model.params.arch.crosses"),
    ("tabnet", {"mask_type": "softmax"}, "model.params.arch.mask_type"),
    ("tabnet", {"gamma": 0.5}, "model.params.arch.gamma"),
    ("tabnet", {"n_steps": True}, "model.params.arch.n_steps"),
    ("tabnet", {"n_heads": 2}, "model.params.arch.n_heads"),
    ("ft_transformer", {"input_embed_dim": 10, "num_heads": 4},
     "model.params.arch.num_heads"),
    ("ft_transformer", {"transformer_activation": "Swish"},
     "model.params.arch.transformer_activation"),
    ("ft_transformer", {"share_embedding_strategy": "none"},
     "model.params.arch.share_embedding_strategy"),
    ("ft_transformer", {"embedding_bias": "yes"}, "model.params.arch.embedding_bias"),
    ("ft_transformer", {"d_token": 8}, "model.params.arch.d_token"),
])
def test_bad_arch_raises_config_error_naming_the_key(name, arch, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        make_ranker(name, {"arch": arch})
    assert err.value.key == key


def test_arch_must_be_a_mapping_and_is_saved_complete():
    with pytest.raises(ConfigError, match="model.params.arch"):
        make_ranker("dcnv2", {"arch": [1, 2]})
    ranker = make_ranker("tabnet", {"arch": {"n_steps": 2}})
    assert ranker.params["arch"]["n_steps"] == 2 and ranker.params["arch"]["n_d"] == 8
