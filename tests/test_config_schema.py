"""One typed schema per config section: the checks and the reference come from it."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from ltr.checks import FieldProblem, Range
from ltr.config_reference import reference
from ltr.config_schema import Section, schema_fields, section, validate
from ltr.errors import ConfigError


class Inner(Section):
    k: Annotated[int, Range(ge=1, integer=True)] = Field(1, description="a count")
    MOVED = {"old": "is not read here: set outer.k instead"}


class Outer(Section):
    lr: Annotated[float, Range(gt=0)] = 0.1
    mode: Literal["a", "b"] = "a"
    inner: Inner | None = None
    items: list[Inner] = []
    named: dict[str, Inner] = {}

    def model_post_init(self, context: Any) -> None:
        if self.mode == "b" and self.inner is None:
            raise FieldProblem("inner", "is needed with mode: b")


@pytest.mark.parametrize("values,key,problem", [
    ({"lr": -0.1}, "model.lr", "must be > 0, got -0.1"),
    ({"lr": "fast"}, "model.lr", "must be > 0, got 'fast'"),
    ({"lr": True}, "model.lr", "must be > 0, got True"),
    ({"mode": "c"}, "model.mode", "must be one of 'a' or 'b', got 'c'"),
    ({"inner": {"k": 0}}, "model.inner.k", "must be an integer >= 1, got 0"),
    ({"inner": {"j": 0}}, "model.inner.j", "unknown key; known: ['k']"),
    ({"inner": {"old": 0}}, "model.inner.old", "is not read here: set outer.k instead"),
    ({"items": [{}, {"k": 2.5}]}, "model.items[1].k", "must be an integer >= 1, got 2.5"),
    ({"named": {"x": {"k": -1}}}, "model.named.x.k", "must be an integer >= 1, got -1"),
    ({"inner": 3}, "model.inner", "must be a mapping, got 3"),
    ({"mode": "b"}, "model.inner", "is needed with mode: b"),
    ({"lrr": 1}, "model.lrr", "unknown key; known: ['inner', 'items', 'lr', 'mode', "
     "'named']"),
])
def test_errors_name_the_dotted_key(values, key, problem):
    with pytest.raises(ConfigError) as err:
        validate(Outer, values, "model")
    assert (err.value.key, err.value.problem) == (key, problem)
    assert str(err.value) == f"config key '{key}': {problem}"


def test_a_section_dataclass_raises_config_errors_and_stays_a_dataclass():
    import dataclasses

    @section("demo")
    class Demo:
        n: Annotated[int, Range(ge=2, integer=True)] = 5

    assert dataclasses.replace(Demo(), n=3).n == 3
    with pytest.raises(ConfigError, match="'demo.n': must be an integer >= 2, got 1"):
        Demo(n=1)
    with pytest.raises(ConfigError, match="'demo.m': unknown key"):
        Demo(m=1)
    with pytest.raises(ConfigError, match="'data.demo.n'"):  # nested: the outer path
        validate(dict[str, Demo], {"demo": {"n": 0}}, "data")


def test_a_config_error_raised_in_a_validator_keeps_its_key():
    class Checked(Section):
        x: int = 0

        def model_post_init(self, context: Any) -> None:
            raise ConfigError("elsewhere.key", "said so")

    with pytest.raises(ConfigError) as err:
        validate(Checked, {}, "model")
    assert err.value.key == "elsewhere.key"


def _schemas() -> list[tuple[Any, str]]:
    from ltr.features.spec import FeatureSpec
    from ltr.labels.cli import LabelRun
    from ltr.labels.config import LabelConfig
    from ltr.rankers.benchmark import BenchmarkRun
    from ltr.rankers.xgboost import XGBoostParams
    from ltr.simulate.config import SimulationConfig
    from ltr.sweep.study import SweepRun
    from ltr.text.config import TextSection
    from ltr.training.datamodule import LtrDataModule
    from ltr.training.sections import model_schema

    return [(LtrDataModule.schema(), "data."), (model_schema(), "model."),
            (FeatureSpec, "data.features."), (TextSection, "text."),
            (LabelConfig, "labels."), (LabelRun, ""), (BenchmarkRun, ""), (SweepRun, ""),
            (SimulationConfig, ""), (XGBoostParams, "")]


REQUIRED = {"LabelRun": {"data": "d", "out": "o"}, "BenchmarkRun": {"models": [{"name": "x"}]},
            "SweepRun": {"model": "x", "space": {"a": {"type": "int", "low": 1, "high": 2}}}}


def test_every_section_refuses_unknown_keys():
    for schema, prefix in _schemas():
        values = {**REQUIRED.get(schema.__name__, {}), "no_such_key": 1}
        with pytest.raises(ConfigError) as err:
            validate(schema, values, prefix.rstrip("."))
        assert err.value.key == f"{prefix}no_such_key", schema


def test_the_reference_lists_every_key_of_every_schema_with_its_range():
    text = reference()
    for schema, prefix in _schemas():
        for doc in schema_fields(schema, prefix):
            rows = [line.replace("\\|", "|") for line in text.splitlines()
                    if line.startswith(f"| `{doc.key}` |")]  # top-level keys recur
            meaning = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc.meaning).replace("``", "`")
            assert any(meaning.split(" *Must")[0][:40] in row and
                       (meaning[meaning.index("*Must"):] in row if "*Must" in meaning
                        else True) for row in rows), doc.key


def test_text_library_keys_are_refused_in_every_text_section():
    """``shared_towers``, ``trainable_layers`` and ``interactions`` were documented but
    read by no command; a section now refuses them, naming what decides instead."""
    from ltr.labels.cli import LabelRun
    from ltr.training.datamodule import LtrDataModule

    for key, instead in [("trainable_layers", "model.trainable_layers"),
                         ("shared_towers", "model.tuned_tower"),
                         ("interactions", "model.interactions")]:
        with pytest.raises(ConfigError) as err:
            LtrDataModule(text={key: 0})
        assert err.value.key == f"data.text.{key}" and instead in err.value.problem
        with pytest.raises(ConfigError) as err:
            validate(LabelRun, {"data": "d", "out": "o", "text": {key: 0}})
        assert err.value.key == f"text.{key}"


def test_data_section_nested_keys_are_checked_at_construction(tmp_path):
    from ltr.training.datamodule import LtrDataModule

    cases = [({"labels": {"n_grades": 1}}, "data.labels.n_grades"),
             ({"features": {"numeric": ["a"], "log1p": ["b"]}}, "data.features.log1p"),
             ({"split": {"history": 3}}, "data.split.history"),
             ({"tasks": ["click", "click"]}, "data.tasks"),
             ({"sampling_rates": {"click": -1.0}}, "data.sampling_rates.click")]
    for values, key in cases:
        with pytest.raises(ConfigError) as err:
            LtrDataModule(data_dir=str(tmp_path / "none"), **values)
        assert err.value.key == key
    dm = LtrDataModule(labels=str(tmp_path / "labels"))  # a label folder: a path
    assert dm.hparams.labels == str(tmp_path / "labels")


def test_model_section_and_ranker_params_share_one_schema():
    from ltr.rankers.base import make_ranker
    from ltr.training.sections import check_model

    with pytest.raises(ConfigError, match="'model.tuned_tower': must be one of"):
        check_model({"tuned_tower": "both"})
    with pytest.raises(ConfigError, match="'models\\[0\\].params.tuned_tower'"):
        make_ranker("mmoe", {"tuned_tower": "both"}, "models[0].name")
    with pytest.raises(ConfigError, match="'model.lce_weight'"):
        check_model({"lce_weight": 0.5})


def test_every_shipped_config_passes_its_schema():
    """The configs in configs/ are what users copy: each passes the schema of its
    command (ranker params included), so none carries an ignored key."""
    from pathlib import Path

    import yaml

    from ltr.labels.cli import LabelRun
    from ltr.rankers.base import make_ranker
    from ltr.rankers.benchmark import BenchmarkRun
    from ltr.simulate.config import SimulationConfig
    from ltr.sweep.study import SweepRun
    from ltr.training.datamodule import LtrDataModule
    from ltr.training.sections import check_model

    root = Path(__file__).resolve().parents[1] / "configs"
    seen = 0
    for path in sorted(root.rglob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        rel = path.relative_to(root).as_posix()
        if rel.startswith("labels/"):
            validate(LabelRun, cfg)
        elif rel.startswith("sweeps/"):
            validate(SweepRun, cfg)
        elif rel == "benchmark.yaml":
            run = validate(BenchmarkRun, cfg)
            for i, entry in enumerate(run.models):
                make_ranker(entry.name, entry.params, f"models[{i}].name")
        elif rel.startswith("simulate"):
            SimulationConfig.from_dict(cfg.get("simulate", cfg))
        else:  # ltr fit configs (an ablation overrides a part of configs/mmoe.yaml)
            if "model" in cfg:
                check_model(cfg["model"])
            if "data" in cfg:
                LtrDataModule.check_args(cfg["data"])
        seen += 1
    assert seen >= 14
