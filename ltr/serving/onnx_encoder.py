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

    def __init__(self, path: str | Path, threads: int = 1, outputs: int = 1) -> None:
        import onnxruntime as ort

        self.outputs = int(outputs)  # 2: (frozen, tuned) embeddings of an encoder pair

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

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray
                 ) -> np.ndarray | tuple[np.ndarray, ...]:
        out = self.session.run(None, {"input_ids": np.asarray(input_ids, np.int64),
                                      "attention_mask": np.asarray(attention_mask, np.int64)})
        if self.outputs == 1:
            return np.asarray(out[0], dtype=np.float32)
        return tuple(np.asarray(o, dtype=np.float32) for o in out[: self.outputs])


PAIR_ONNX_FILE = "text/query_pair_encoder.onnx"


class _PairModule:
    """Builds the ``torch.nn.Module`` that encodes a text with the frozen encoder and with
    its fine-tuned top together: the frozen bottom (embeddings + the first ``L - k``
    layers) runs once, then the frozen top and the tuned top each finish from it."""

    @staticmethod
    def build(frozen, tuned, k: int):
        import torch

        from ltr.text.layers import attention_bias, run_layers, transformer_parts
        from ltr.text.pooling import pool

        _, tuned_layers = transformer_parts(tuned.model)

        class Pair(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.frozen = frozen
                self.tuned_top = torch.nn.ModuleList(list(tuned_layers)[tuned.num_layers - k:])

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
                model = self.frozen.model
                embeddings, layers = transformer_parts(model)
                hidden = embeddings(input_ids=input_ids)
                bias = attention_bias(model, hidden, attention_mask)
                bottom = run_layers(list(layers)[: len(layers) - k], hidden, bias)
                top = run_layers(list(layers)[len(layers) - k:], bottom, bias)
                tuned_top = run_layers(self.tuned_top, bottom, bias)
                return (pool(top, attention_mask, frozen.pooling, frozen.normalize),
                        pool(tuned_top, attention_mask, tuned.pooling, tuned.normalize))

        return Pair().eval()


def same_bottom(frozen, tuned, k: int) -> bool:
    """Whether ``tuned`` differs from ``frozen`` only in its top ``k`` layers (then one
    pass over the bottom serves both)."""
    import torch

    from ltr.text.layers import transformer_parts

    if k <= 0 or frozen.num_layers != tuned.num_layers:
        return False
    fe, fl = transformer_parts(frozen.model)
    te, tl = transformer_parts(tuned.model)
    pairs = [(fe, te), *zip(list(fl)[: len(fl) - k], list(tl)[: len(tl) - k], strict=True)]
    for a, b in pairs:
        for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items(),
                                      strict=True):
            if na != nb or ta.shape != tb.shape or not torch.equal(ta, tb):
                return False
    return True


def export_pair_onnx(frozen, tuned, k: int, path: Path) -> float:
    """Write the frozen + fine-tuned query encoder pair (:class:`_PairModule`) as one ONNX
    graph with outputs ``embedding`` and ``tuned_embedding``; return the largest difference
    to the two PyTorch encoders on :data:`PROBES`, or raise above :data:`TOLERANCE`."""
    import warnings

    import torch

    from ltr.text.batching import pad, tokenize

    path.parent.mkdir(parents=True, exist_ok=True)
    ids, mask = pad(tokenize(frozen.tokenizer, PROBES, frozen.max_length), frozen.pad_id)
    module = _PairModule.build(frozen, tuned, k)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (ids, mask), str(path),
                          input_names=["input_ids", "attention_mask"],
                          output_names=["embedding", "tuned_embedding"], opset_version=OPSET,
                          dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "embedding": {0: "batch"},
                                        "tuned_embedding": {0: "batch"}})
    with torch.inference_mode():
        want = (frozen.forward(ids, mask).float().numpy(),
                tuned.forward(ids, mask).float().numpy())
    got = OnnxEncoder(path, outputs=2)(ids.numpy(), mask.numpy())
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    if not diff <= TOLERANCE:
        raise DataValidationError(str(path), f"the ONNX encoder pair differs from PyTorch by "
                                  f"{diff:.3g} (> {TOLERANCE}); export with --no-onnx")
    return diff
