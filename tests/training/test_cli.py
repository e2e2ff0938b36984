"""``ltr fit|test|predict`` through LightningCLI on a tiny log."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from ltr.cli import main as ltr
from tests.text.conftest import build_tiny_bert

FEATURES = {"numeric": ["price", "price_sensitivity", "hist_pair_ctr"], "log1p": ["price"],
            "categorical": ["brand", "segment"], "derived": ["brand_match"]}


def write_config(tmp_path, log_dir, text=None, **model):
    cfg = {
        "seed_everything": 0,
        "model": {"tasks": ["click", "add_to_cart", "purchase", "relevance"],
                  "use_text": text is not None, "n_experts": 2, "bottom": [16],
                  "expert_hidden": [8], "tower_hidden": [4], **model},
        "data": {"data_dir": str(log_dir), "features": FEATURES, "text": text,
                 "batch_size": 16, "hard_negatives": 2, "pool_lists": 1},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1,
                    "enable_progress_bar": False, "default_root_dir": str(tmp_path / "run"),
                    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                               "init_args": {"save_dir": str(tmp_path / "run")}},
                    "callbacks": [
                        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                         "init_args": {"monitor": "val/ndcg@10", "mode": "max",
                                       "dirpath": str(tmp_path / "ckpt"),
                                       "filename": "best"}},
                        {"class_path": "ltr.training.cli.WritePredictions",
                         "init_args": {"path": str(tmp_path / "pred.parquet")}}]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_fit_test_predict_without_text(tmp_path, tiny_log_dir):
    cfg = write_config(tmp_path, tiny_log_dir, None)
    assert ltr(["fit", "--config", str(cfg)]) == 0
    ckpt = tmp_path / "ckpt" / "best.ckpt"
    assert ckpt.exists()
    assert next((tmp_path / "run").rglob("preprocessor.json")).stat().st_size > 0
    metrics = pd.read_csv(next((tmp_path / "run").rglob("metrics.csv")))
    assert metrics["val/ndcg@10"].notna().any()
    assert ltr(["test", "--config", str(cfg), "--ckpt_path", str(ckpt)]) == 0
    # every judged query is in the log: their pools are known-query pools
    assert ltr(["predict", "--config", str(cfg), "--ckpt_path", str(ckpt),
                "--data.predict_split", "known_pools"]) == 0
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert {"query", "product_id", "score", "click", "relevance"} <= set(pred.columns)
    assert pred["score"].notna().all() and len(pred) > 0


def test_fit_with_learned_task_weights_and_listwise_losses(tmp_path, tiny_log_dir):
    cfg = write_config(tmp_path, tiny_log_dir, None, task_weighting="uncertainty",
                       losses={"click": "softmax_ce", "relevance": "listnet"})
    assert ltr(["fit", "--config", str(cfg)]) == 0
    ckpt = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=False)
    assert "weighting.log_vars" in ckpt["state_dict"]


@pytest.mark.parametrize("tower,lce", [("query", 1.0), ("shared", 0.0)])
def test_fit_with_tiny_text_encoder_and_finetuned_top(tmp_path, tiny_log_dir, tower, lce):
    """Fine-tuning the top layer (query tower with the LCE loss, or both towers) through
    ``ltr fit``; the checkpoint exports as a package whose scores equal training's."""
    from ltr.serving import RankingService, export_package

    model_dir = build_tiny_bert(tmp_path / "bert")
    text = {"model_name": str(model_dir), "max_length": 16, "progress": False,
            "product_fields": ["product_class"]}
    cfg = write_config(tmp_path, tiny_log_dir, text, trainable_layers=1, tuned_tower=tower,
                       lce_weight=lce)
    assert ltr(["fit", "--config", str(cfg)]) == 0
    ckpt = tmp_path / "ckpt" / "best.ckpt"
    saved = torch.load(ckpt, weights_only=False)
    assert any(k.startswith("text_branch.") for k in saved["state_dict"])  # tuned layers
    from pathlib import Path

    assert (Path(saved["ltr_pipeline"]) / "pipeline.json").exists()  # export reads it
    out = export_package(ckpt, tmp_path / "pkg", parity_lists=20, log=lambda *_: None)
    service = RankingService(out)
    parity = service.metrics()["parity"]
    assert parity["test"]["max_abs_diff"] <= 1e-4
    assert service.text_info["tuned"]["tower"] == tower
    ranked = service.rank("a query nobody typed", [int(p) for p in
                                                   service.catalog.columns["product_id"][:5]])
    assert len(ranked.products) == 5


@pytest.mark.parametrize("override,key", [
    (["--model.losses", "{click: hinge}"], "model.losses.click"),
    (["--model.n_experts", "-2"], "model.n_experts"),
    (["--model.tasks", "[click, dwell]"], "model.tasks"),
    (["--model.score_weights", "{ctr: 1.0}"], "model.score_weights.ctr"),
    (["--data.sampling", "weird"], "data.sampling"),
])
def test_bad_config_fails_at_start_with_the_key(tmp_path, tiny_log_dir, capsys, override, key):
    cfg = write_config(tmp_path, tiny_log_dir, None)
    assert ltr(["fit", "--config", str(cfg), *override]) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("ablation", ["tabular_only", "no_relevance_task", "no_interactions",
                                      "finetune_top1", "uniform_sampling", "heldout_fold0"])
def test_shipped_configs_parse(ablation, capsys):
    from tests.conftest import ROOT

    with pytest.raises(SystemExit) as done:
        ltr(["fit", "--config", str(ROOT / "configs" / "mmoe.yaml"), "--config",
             str(ROOT / "configs" / "ablations" / f"{ablation}.yaml"), "--print_config"])
    assert done.value.code in (0, None)
    assert "model:" in capsys.readouterr().out


def test_streamed_training(tmp_path, tiny_log_dir):
    cfg = write_config(tmp_path, tiny_log_dir, None)
    assert ltr(["fit", "--config", str(cfg), "--data.stream_dir", str(tmp_path / "stream")]) == 0
    assert (tmp_path / "stream" / "train.parquet").exists()


def test_use_text_without_text_data_is_a_config_error(tmp_path, tiny_log_dir, capsys):
    cfg = write_config(tmp_path, tiny_log_dir, None, use_text=True)
    assert ltr(["fit", "--config", str(cfg)]) == 2
    assert "model.use_text" in capsys.readouterr().err


def test_ddp_two_cpu_processes(tmp_path, tiny_log_dir):
    """Lightning's DDP strategy with 2 CPU processes (gloo) trains and checkpoints."""
    cfg = write_config(tmp_path, tiny_log_dir, None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "ltr.cli", "fit", "--config", str(cfg),
                           "--trainer.strategy", "ddp", "--trainer.devices", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ckpt" / "best.ckpt").exists()
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout


def test_ple_config_trains_through_ltr_fit(tmp_path, tiny_log_dir, capsys):
    """`ltr fit` with the PLE backbone: the shipped configs/ple.yaml parses, and the
    backbone trains and checkpoints like the MMoE."""
    from tests.conftest import ROOT

    with pytest.raises(SystemExit) as done:
        ltr(["fit", "--config", str(ROOT / "configs" / "mmoe.yaml"), "--config",
             str(ROOT / "configs" / "ple.yaml"), "--print_config"])
    assert done.value.code in (0, None)
    assert "backbone: ple" in capsys.readouterr().out
    cfg = write_config(tmp_path, tiny_log_dir, None, backbone="ple",
                       backbone_args={"levels": 2, "n_shared": 1})
    assert ltr(["fit", "--config", str(cfg)]) == 0
    state = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=False)["state_dict"]
    assert any(".levels.1." in k for k in state)


def test_single_score_backbone_trains_through_ltr_fit_on_two_processes(tmp_path,
                                                                        tiny_log_dir):
    """The single-score baselines' backbones are LtrModule backbones too: `ltr fit` trains
    DCN-V2 on the relevance task, here under DDP (two gloo processes pool their validation
    NDCG@10 sums), and checkpoints it."""
    path = write_config(tmp_path, tiny_log_dir, None)
    cfg = yaml.safe_load(path.read_text())
    cfg["model"] = {"tasks": ["relevance"], "use_text": False, "backbone": "dcnv2",
                    "backbone_args": {"deep": [8], "n_cross": 1}}
    cfg["trainer"]["callbacks"] = cfg["trainer"]["callbacks"][:1]  # the checkpoint
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "ltr.cli", "fit", "--config", str(path),
                           "--trainer.strategy", "ddp", "--trainer.devices", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    ckpt = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["backbone"] == "dcnv2"
    assert any(k.startswith("scorer.cross.") for k in ckpt["state_dict"])
    metrics = pd.read_csv(next((tmp_path / "run").rglob("metrics.csv")))
    assert metrics["val/ndcg@10"].between(0, 1).any()
