"""Training throughput of the MMoE: full model with a frozen (cached) text encoder vs
tabular-only, on the bundled sample, in one run.

Run: python scripts/bench_train.py [--steps 150] [--threads 1]

Both variants train on the same prepared data and the same batches (64 lists of up to 25
slots); rows/s counts real (unpadded) slots per second of forward + backward + AdamW step,
after 10 warm-up steps. Target (issue 6): the full model's rows/s is at least half of
tabular-only's. Also reports one epoch of the full model with the top encoder layer
fine-tuned over cached bottom states, for scale.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ltr.training.datamodule import LtrDataModule
from ltr.training.module import LtrModule

ROOT = Path(__file__).resolve().parents[1]


def throughput(dm: LtrDataModule, steps: int, **model_kwargs) -> float:
    torch.manual_seed(0)
    model = LtrModule(tasks=dm.tasks, feature_dims=dm.feature_dims, **model_kwargs)
    if model.use_text:
        model.attach_text(dm.text_branch(model_kwargs.get("trainable_layers", 0)))
    opt = model.configure_optimizers()
    model.train()
    batches = []
    for b in dm.train_dataloader():
        batches.append(b)
        if len(batches) >= steps + 10:
            break
    rows, t0 = 0, 0.0
    for i, b in enumerate(batches):
        if i == 10:
            t0, rows = time.perf_counter(), 0
        out = model(b)
        loss = model.weighting(model._losses(b, out))
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows += int(b["mask"].sum())
    return rows / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = {"model_name": "all-MiniLM-L6-v2", "product_fields": ["product_class"],
            "cache_dir": str(ROOT / ".cache" / "ltr-text"), "progress": False}
    dm = LtrDataModule(data_dir=str(ROOT / "data_samples" / "wands"), text=text)
    dm.setup()
    tab = throughput(dm, args.steps, use_text=False)
    full = throughput(dm, args.steps, use_text=True)
    print(f"torch threads: {args.threads}; {args.steps} steps of 64 lists")
    print(f"tabular-only MMoE:              {tab:10,.0f} rows/s")
    print(f"full MMoE, frozen cached text:  {full:10,.0f} rows/s  "
          f"(ratio {full / tab:.2f}; target >= 0.50)")
    tuned = throughput(dm, min(args.steps, 20), use_text=True, trainable_layers=1)
    print(f"full MMoE, top layer fine-tuned: {tuned:9,.0f} rows/s (20 steps)")


if __name__ == "__main__":
    main()
