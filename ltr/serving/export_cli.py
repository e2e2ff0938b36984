"""``ltr export --checkpoint ... --out DIR`` (see :mod:`ltr.serving.export`)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="a saved ranker folder (ranker.json) or an `ltr fit` .ckpt")
    parser.add_argument("--out", required=True, help="package folder to write")
    parser.add_argument("--config", default=None,
                        help="YAML whose 'data' section the model was trained with "
                             "(default: the data settings saved with the model)")
    parser.add_argument("--data", default=None, dest="data_dir",
                        help="override the data folder (catalog, customers, log)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--copy-encoder", action="store_true",
                        help="copy the text encoder's weights even when they come from an "
                             "installed package (default: reference it)")
    parser.add_argument("--no-customers", action="store_true",
                        help="leave the customer table out (requests then send customer "
                             "records, not ids)")
    parser.add_argument("--no-onnx", action="store_true",
                        help="do not add the ONNX copy of the text encoder (on-the-fly "
                             "encoding then runs in PyTorch)")
    parser.add_argument("--parity-lists", type=int, default=200,
                        help="lists of each split scored both ways to check the package")


def run(args: argparse.Namespace) -> int:
    import atexit
    import gc

    import torch

    from ltr.serving.export import export_package

    torch.set_num_threads(1)
    export_package(args.checkpoint, args.out, config=args.config, data_dir=args.data_dir,
                   overwrite=args.overwrite, copy_encoder=args.copy_encoder,
                   include_customers=not args.no_customers, parity_lists=args.parity_lists,
                   onnx=not args.no_onnx)
    # at exit, Python's last garbage collection walks every object of torch, Lightning and
    # transformers to free memory the OS takes back anyway (1.6 s of an 18 s export);
    # frozen objects are skipped (atexit: nothing changes for a caller that goes on)
    atexit.register(gc.freeze)
    return 0
