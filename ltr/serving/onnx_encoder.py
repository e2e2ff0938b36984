"""The package's text encoder as an ONNX graph, run by ONNX Runtime for on-the-fly
encoding (queries the package has not seen, product records).

Why: one short query through all-MiniLM-L6-v2 took 12–16 ms in PyTorch eager on this
2-core CPU and 4–5 ms in ONNX Runtime (its small-matrix kernels and fused attention),
with embeddings equal to 7e-7. ``ltr export`` writes ``text/query_encoder.onnx`` when
``onnx`` and ``onnxruntime`` are installed (the ``serve`` extra), checks it against the
PyTorch encoder on probe texts of several lengths in one padded batch, and records the
largest difference. An ONNX file is a protobuf graph of standard operators: loading it
runs no Python code. A service without ONNX Runtime falls back to the PyTorch encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ltr.errors import DataValidationError

ONNX_FILE = "text/query_encoder.onnx"
OPSET = 17
TOLERANCE = 1e-4
PROBES = ["sofa", "modern grey velvet sofa with chaise", "oak dining table set of 4 chairs",
          "a", "outdoor patio furniture set with cushions and umbrella for six people"]


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _pooled_module(encoder):
    """``encoder.forward`` (model + pooling) as a plain module to trace."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            return self.encoder(input_ids, attention_mask)

    return Pooled().eval()


def export_onnx(encoder, path: Path) -> float:
    """Write ``encoder`` (a :class:`ltr.text.TextEncoder`) as ONNX to ``path``; return the
    largest difference to PyTorch on :data:`PROBES`, or raise if above
    :data:`TOLERANCE`."""
    import warnings

    import torch

    from ltr.text.batching import pad, tokenize

    path.parent.mkdir(parents=True, exist_ok=True)
    ids, mask = pad(tokenize(encoder.tokenizer, PROBES, encoder.max_length), encoder.pad_id)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_pooled_module(encoder), (ids, mask), str(path),
                          input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "embedding": {0: "batch"}})
    with torch.inference_mode():
        want = encoder.forward(ids, mask).float().numpy()
    got = OnnxEncoder(path)(ids.numpy(), mask.numpy())
    diff = float(np.abs(got - want).max())
    if not diff <= TOLERANCE:
        raise DataValidationError(str(path), f"the ONNX encoder differs from PyTorch by {diff:.3g} "
                                  f"(> {TOLERANCE}); export with --no-onnx")
    return diff


class OnnxEncoder:
    """``(input_ids [B, T] int64, attention_mask [B, T] int64) -> [B, d] float32`` with
    ONNX Runtime on the CPU, one intra-op thread (concurrency comes from requests).
    ``InferenceSession.run`` may be called from several threads at once."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            raise DataValidationError(str(path), f"cannot be loaded by ONNX Runtime: "
                                      f"{str(exc).splitlines()[0]}") from exc

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {"input_ids": np.asarray(input_ids, np.int64),
                                      "attention_mask": np.asarray(attention_mask, np.int64)})
        return np.asarray(out[0], dtype=np.float32)
