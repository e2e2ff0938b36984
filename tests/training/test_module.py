"""The Lightning module: residual start, the validated ranking score, distillation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ltr.errors import ConfigError
from ltr.training.datamodule import LtrDataModule
from ltr.training.experiment import fit_and_test
from ltr.training.lists import ListDataset
from ltr.training.module import LtrModule
from tests.text.conftest import build_tiny_bert
from tests.training.test_prepare import FEATURES, TASKS

SMALL = {"n_experts": 2, "bottom": [16], "expert_hidden": [8], "tower_hidden": [4]}
TEXT_FEATURES = {**FEATURES, "numeric": [*FEATURES["numeric"], "hist_pair_label"]}


@pytest.fixture(scope="module")
def dm(tiny_log_dir, tmp_path_factory):
    bert = build_tiny_bert(tmp_path_factory.mktemp("bert"))
    text = {"model_name": str(bert), "max_length": 16, "progress": False}
    module = LtrDataModule(data_dir=str(tiny_log_dir), tasks=TASKS, features=TEXT_FEATURES,
                           text=text, folds=3, fold=0, hard_negatives=2, pool_lists=1,
                           batch_size=16)
    module.setup()
    return module


def _batch(dm, lists):
    b = ListDataset(lists).batch(slice(0, len(lists)))
    d = dm.prepared
    b["query_vec"] = torch.from_numpy(d.query_embeddings)[b["query_text"]]
    b["product_vec"] = torch.from_numpy(d.product_embeddings)[b["product_text"]]
    return b


def test_every_output_starts_as_the_zero_shot_cosine(dm):
    """Zero-initialised towers: before any step each task output is a positive multiple
    of the cosine plus a constant, so it ranks exactly as the cosine."""
    torch.manual_seed(0)
    m = LtrModule(tasks=TASKS, **SMALL, feature_dims=dm.feature_dims).eval()
    with torch.no_grad():
        out, evidence = m.outputs(_batch(dm, dm.prepared.pools))
    cos = evidence["cosine"]
    for task in TASKS:
        np.testing.assert_allclose(out[task].numpy(), 5.0 * cos.numpy(), atol=1e-5)
    assert m.output_names[:2] == ["cosine", "text_similarity"]
    assert {"coverage", "history_label"} <= set(m.output_names)


def test_score_uses_the_warm_or_cold_weights_of_each_list(dm):
    m = LtrModule(tasks=TASKS, **SMALL, feature_dims=dm.feature_dims).eval()
    names = m.output_names
    cold = np.zeros(len(names))
    cold[names.index("cosine")] = 1.0
    warm = np.zeros(len(names))
    warm[names.index("history_label")] = 2.0
    m.set_score_weights("cold", cold)
    m.set_score_weights("warm", warm)
    lists = dm.prepared.known_pools
    b = _batch(dm, lists)
    b["warm"] = torch.tensor([True] + [False] * (len(lists) - 1))
    with torch.no_grad():
        out, evidence = m.outputs(b)
        score = m.score(out, evidence, b["warm"]).numpy()
    np.testing.assert_allclose(score[0], 2.0 * evidence["history_label"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(score[1:], evidence["cosine"][1:].numpy(), atol=1e-6)
    # the weights are state: saved and loaded with the model
    state = m.state_dict()
    back = LtrModule(tasks=TASKS, **SMALL, feature_dims=dm.feature_dims)
    back.load_state_dict(state)
    np.testing.assert_array_equal(back.score_weights_warm.numpy(), warm.astype(np.float32))


def test_fit_selects_the_score_on_validation(dm):
    _, m = fit_and_test(dm, {**SMALL}, max_epochs=1, run_test=False)
    report = m.selection_report
    assert set(report) <= {"cold", "warm"} and report
    for case, r in report.items():
        # few validation lists: the case's reference is kept (the cosine-based text
        # similarity for new queries, the history label for known ones)
        assert r["kept_reference"] and r["lists"] < 30
        weights = {k: v for k, v in r["weights"].items() if v}
        assert list(weights) == [r["reference"]]
        assert r["reference"] == {"cold": "text_similarity", "warm": "history_label"}[case]


def test_fixed_score_and_bad_settings(dm):
    m = LtrModule(tasks=TASKS, **SMALL, score_selection="fixed",
                  score_weights={"click": 0.5, "relevance": 1.0}, feature_dims=dm.feature_dims)
    w = dict(zip(m.output_names, m.score_weights_cold.tolist(), strict=True))
    assert w["cosine"] == 0 and w["click"] == 0.5 and w["relevance"] == 1.0
    for kwargs, key in (({"score_selection": "best"}, "model.score_selection"),
                        ({"score_outputs": ["nope"]}, "model.score_outputs"),
                        ({"lce_weight": 1.0}, "model.lce_weight"),
                        ({"tuned_tower": "both"}, "model.tuned_tower"),
                        ({"distill": {"rounds": -1}}, "model.distill.rounds"),
                        ({"distill": {"alpha": 2}}, "model.distill.alpha"),
                        ({"distill": {"teacher": 1}}, "model.distill.teacher")):
        with pytest.raises(ConfigError, match=key):
            LtrModule(tasks=TASKS, **SMALL, **kwargs, feature_dims=dm.feature_dims)


def test_self_distillation_softens_the_targets_then_restores_them(dm, tmp_path):
    """After each round the relevance targets become alpha * label + (1 - alpha) * the
    teacher's grade; the original labels come back when training ends."""
    labels = dm.prepared.train.labels["relevance"]
    before = labels.copy()
    seen = []

    class Spy(LtrModule):
        def on_train_epoch_end(self) -> None:
            super().on_train_epoch_end()
            seen.append(dm.prepared.train.labels["relevance"].copy())

    import lightning.pytorch as pl

    m = Spy(tasks=TASKS, **SMALL, distill={"rounds": 1, "alpha": 0.5, "every": 1},
            feature_dims=dm.feature_dims)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(tmp_path))
    trainer.fit(m, dm)
    known = np.isfinite(before)
    assert not np.allclose(seen[0][known], before[known])  # softened after round 1
    np.testing.assert_array_equal(seen[1][known], seen[0][known])  # one round only
    top = np.nanmax(np.where(dm.prepared.train.mask, before, np.nan), axis=1, keepdims=True)
    assert (seen[0][known] <= np.broadcast_to(top, before.shape)[known] + 1e-6).all()
    np.testing.assert_array_equal(dm.prepared.train.labels["relevance"], before)


def test_weights_saved_before_the_backbone_rename_still_load(dm):
    """Packages exported when the backbone was called ``mmoe`` load unchanged."""
    torch.manual_seed(0)
    old = LtrModule(tasks=TASKS, **SMALL, feature_dims=dm.feature_dims)
    legacy = {("mmoe." + k[8:] if k.startswith("experts.") else k): v
              for k, v in old.state_dict().items()}
    assert any(k.startswith("mmoe.") for k in legacy)
    new = LtrModule(tasks=TASKS, **SMALL, feature_dims=dm.feature_dims)
    new.load_state_dict(legacy, strict=True)
    for k, v in old.state_dict().items():
        torch.testing.assert_close(new.state_dict()[k], v)


# ---------------------------------------------------------------------- single-score
def test_single_score_backbone_scores_each_slot_with_the_cosine_column(dm):
    """A single-score backbone (DCN-V2 here) scores every slot as one row, the frozen
    cosine appended to the numeric features; the ranking score is that score."""
    torch.manual_seed(0)
    dims = dm.feature_dims
    m = LtrModule(backbone="dcnv2", backbone_args={"deep": [8]}, feature_dims=dims).eval()
    assert m.tasks == ["relevance"] and m.output_names == ["relevance"]
    assert m.tabular is None and m.experts is None and m.text_wide is None
    lists = dm.prepared.pools
    batch = _batch(dm, lists)
    with torch.no_grad():
        out = m.predict_scores(batch)
        q = batch["query_vec"][:, None].expand_as(batch["product_vec"])
        cos = torch.nn.functional.cosine_similarity(q, batch["product_vec"], dim=-1)
        numeric = torch.cat([batch["numeric"], cos[..., None]], dim=-1)
        g, width = lists.mask.shape
        rows = m.scorer(numeric.reshape(g * width, -1),
                        batch["categorical"].reshape(g * width, -1)).reshape(g, width)
    torch.testing.assert_close(out["relevance"], rows, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["score"], out["relevance"])
    assert not m.outputs(batch)[1]  # no evidence outputs


def test_single_score_backbone_refuses_what_it_would_ignore(dm):
    dims = dm.feature_dims
    with pytest.raises(ConfigError, match="relevance") as err:
        LtrModule(backbone="tabnet", tasks=["click", "relevance"], feature_dims=dims)
    assert err.value.key == "model.tasks"
    for key, value in (("text_proj", 8), ("position_tower", False), ("n_experts", 2),
                       ("score_selection", "fixed"), ("distill", {"rounds": 1})):
        with pytest.raises(ConfigError, match="single-score backbone 'dcnv2'") as err:
            LtrModule.check_args({"backbone": "dcnv2", key: value})
        assert err.value.key == f"model.{key}"
    with pytest.raises(ConfigError, match="ft_transformer") as err:  # every kind is named
        LtrModule.check_args({"backbone": "dcnv3"})
    assert err.value.key == "model.backbone"
    # the text dimension is not needed: the scorer reads only the cosine
    m = LtrModule(backbone="dcnv2", use_text=False,
                  feature_dims={"n_numeric": dims["n_numeric"],
                                "cardinalities": dims["cardinalities"]})
    assert m.scorer.encoder.n_numeric == dims["n_numeric"]
