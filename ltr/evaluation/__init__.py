"""Evaluation: load scored lists and labels, compute metrics, compare models, write reports."""

from ltr.evaluation.evaluate import Evaluation, evaluate
from ltr.evaluation.inputs import EvalInputs, load_inputs
from ltr.evaluation.report import format_table, write_report
from ltr.evaluation.significance import PairedTest, paired_bootstrap, paired_test, paired_ttest

__all__ = [
    "EvalInputs",
    "Evaluation",
    "PairedTest",
    "evaluate",
    "format_table",
    "load_inputs",
    "paired_bootstrap",
    "paired_test",
    "paired_ttest",
    "write_report",
]
