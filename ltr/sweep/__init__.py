"""Optuna sweeps over any ranker of the common interface (``ltr sweep --config``).

:mod:`ltr.sweep.space` parses and validates the search space; :mod:`ltr.sweep.study`
runs (or resumes) the study and exports the best trial; :mod:`ltr.sweep.cli` is the
command. See ``docs/sweeps.md``.
"""
