from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.errors import ConfigError
from ltr.text import TextTowers, product_text


def test_product_text_is_title_plus_fields_skipping_missing():
    products = pd.DataFrame(
        {
            "title": ["oak table", "red sofa", "lamp"],
            "brand": ["Acme", None, " "],
            "category": ["Furniture / Tables", "Furniture / Sofas", None],
        }
    )
    out = product_text(products, ["brand", "category"])
    assert out.tolist() == [
        "oak table | Acme | Furniture / Tables",
        "red sofa | Furniture / Sofas",
        "lamp",
    ]
    assert product_text(products).tolist() == ["oak table", "red sofa", "lamp"]


def test_unknown_field_names_the_key():
    with pytest.raises(ConfigError) as err:
        product_text(pd.DataFrame({"title": ["a"]}), ["colour"])
    assert err.value.key == "text.product_fields" and "colour" in str(err.value)


def test_shared_and_separate_towers(tiny_bert_dir):
    base = {"model_name": str(tiny_bert_dir), "progress": False, "max_length": 32}
    shared = TextTowers.from_config(base)
    assert shared.shared and shared.query is shared.product
    separate = TextTowers.from_config({**base, "shared_towers": False, "trainable_layers": 1})
    assert not separate.shared
    q_params = {id(p) for p in separate.query.parameters()}
    assert not q_params & {id(p) for p in separate.product.parameters()}
    texts = ["oak table", "red sofa", "oak table"]
    q, p = separate.encode_queries(texts), separate.encode_products(texts)
    np.testing.assert_allclose(
        q.embeddings, p.embeddings, rtol=1e-6
    )  # same start, separate weights
    assert q.inverse.tolist() == [0, 1, 0]


def test_product_texts_use_the_configured_fields(tiny_bert_dir):
    towers = TextTowers.from_config(
        {
            "model_name": str(tiny_bert_dir),
            "max_length": 32,
            "product_fields": ["brand"],
            "product_separator": " - ",
        }
    )
    texts = towers.product_texts(pd.DataFrame({"title": ["oak table"], "brand": ["Acme"]}))
    assert texts.tolist() == ["oak table - Acme"]
