"""``ltr evaluate``: score predictions against labels, print a table, write a report folder."""

from __future__ import annotations

import argparse

from ltr.evaluation.evaluate import BINARY_DEFAULT, GRADED_DEFAULT, evaluate
from ltr.evaluation.inputs import KNOWN_LABELS, load_inputs, parse_prediction_args
from ltr.evaluation.report import format_table, write_report
from ltr.evaluation.significance import TESTS

EPILOG = f"""\
inputs:
  predictions: columns GROUP (--group-col), product_id (--item-col), score (--score-col),
  optionally model (--model-col). Give several models as several --predictions NAME=PATH,
  or one file with a model column. Labels: GROUP, product_id and label columns
  (default: those of {', '.join(KNOWN_LABELS)} present). CSV, TSV or Parquet.

metrics (default per label column):
  graded: {', '.join(GRADED_DEFAULT)}
  binary: {', '.join(BINARY_DEFAULT)}
  --metrics takes names like ndcg@10 mrr@10 map@10 recall@10 err@10 auc, or LABEL:NAME
  for one label column only. Ties in scores rank the smaller product id first (text order).

bad input (see docs/evaluation.md):
  error, naming file, column and rows:
    missing column; non-numeric or NaN score; NaN or negative label; empty id;
    duplicate (group, product) rows in labels or in one model's predictions;
    a prediction for a query not in the labels; a prediction for a product not labelled
    for its query; a labelled product of a scored query with no score;
    a query scored by some models but not by others.
  excluded and counted in the table footer and metrics.json (input_checks):
    labelled queries no model scored (unscored_queries);
    queries with a single item (single_item_queries);
    per metric: queries with no relevant item (zero_ideal; --include-zero-ideal keeps them
    as 0) and, for AUC, queries with no positive or no negative item (single_class).

report folder: metrics.json, metrics.csv, per_query.csv, summary.md, ndcg_at_k.png,
mrr_by_task.png, label_distribution.png.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--labels", required=True, help="labels file")
    parser.add_argument(
        "--predictions", required=True, action="append", metavar="[NAME=]PATH",
        help="predictions file, repeatable; NAME= names the model (default: the 'model' "
        "column, else the file stem)",
    )
    parser.add_argument("--out", required=True, help="report folder (created)")
    parser.add_argument("--group-col", default="query_id",
                        help="query/session id column in both files (default: query_id)")
    parser.add_argument("--item-col", default="product_id", help="default: product_id")
    parser.add_argument("--score-col", default="score", help="default: score")
    parser.add_argument("--model-col", default="model", help="default: model")
    parser.add_argument("--label-cols", nargs="+", default=None, metavar="COL",
                        help=f"label columns (default: those of {', '.join(KNOWN_LABELS)} present)")
    parser.add_argument("--metrics", nargs="+", default=None, metavar="SPEC",
                        help="metrics, e.g. ndcg@10 clicked:mrr@10 auc (default: see below)")
    parser.add_argument("--gain", choices=("exponential", "linear"), default="exponential",
                        help="NDCG gain: 2^rel-1 or rel (default: exponential)")
    parser.add_argument("--include-zero-ideal", action="store_true",
                        help="count queries with no relevant item as 0 instead of excluding them")
    parser.add_argument("--err-gmax", type=float, default=None,
                        help="ERR's largest grade (default: largest value of each label column)")
    parser.add_argument("--baseline", default=None, help="model to compare to (default: first)")
    parser.add_argument("--test", choices=TESTS, default="bootstrap",
                        help="paired test over queries (default: bootstrap)")
    parser.add_argument("--n-resamples", type=int, default=2000,
                        help="bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--curve-label", default=None,
                        help="label column of the NDCG@1..20 plot (default: first graded)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    inputs = load_inputs(
        args.labels,
        parse_prediction_args(args.predictions),
        group_col=args.group_col,
        item_col=args.item_col,
        score_col=args.score_col,
        model_col=args.model_col,
        label_cols=args.label_cols,
    )
    ev = evaluate(
        inputs,
        metrics=args.metrics,
        gain=args.gain,
        exclude_zero_ideal=not args.include_zero_ideal,
        baseline=args.baseline,
        test=args.test,
        n_resamples=args.n_resamples,
        seed=args.seed,
        err_gmax=args.err_gmax,
        curve_label=args.curve_label,
    )
    paths = write_report(ev, args.out, plots=not args.no_plots)
    c = inputs.counts
    print(format_table(ev))
    print()
    print(f"{c['evaluated_queries']} queries evaluated ({c['evaluated_rows']} rows); excluded: "
          f"{c['unscored_queries']} labelled queries without predictions, "
          f"{c['single_item_queries']} single-item queries.")
    test = "paired bootstrap" if args.test == "bootstrap" else "paired t-test"
    if len(ev.models) > 1:
        print(f"delta and p ({test}, two-sided) against baseline '{ev.baseline}'; * p < 0.05.")
    print(f"report: {args.out} ({', '.join(p.name for p in paths)})")
    return 0
