"""Progress on long work: a line per step on stderr (what, how long) and tqdm bars on long
loops (text encoding). ``ltr --quiet COMMAND`` or ``LTR_PROGRESS=0`` silences both; a
config's ``text.progress: false`` silences the encoding bars alone.

Steps print when they end, and only when they took at least ``min_seconds`` (0.5 s), so
a run on the bundled sample stays short and a run on a large log says what it is doing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Turn every progress line and bar off (``ltr --quiet``) or back on."""
    global _QUIET
    _QUIET = bool(quiet)


def enabled() -> bool:
    return not _QUIET and os.environ.get("LTR_PROGRESS", "1") not in ("0", "false", "no")


@contextmanager
def step(what: str, min_seconds: float = 0.5) -> Iterator[None]:
    """Time a step; print ``what ... (N.Ns)`` to stderr when it ends (if it took long
    enough and progress is on)."""
    t0 = time.perf_counter()
    yield
    took = time.perf_counter() - t0
    if took >= min_seconds and enabled():
        print(f"  {what} ({took:.1f}s)", file=sys.stderr, flush=True)
