"""Write ``docs/robustness.md`` from the case tables of ``tests/robustness``:

    python -m tests.robustness.table            # rewrite docs/robustness.md
    python -m tests.robustness.table --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from pathlib import Path

from tests.robustness.harness import Case

MODULES = ("test_data", "test_config", "test_cli", "test_packages", "test_requests",
           "test_http", "test_noops", "test_interruptions")
DOC = Path(__file__).resolve().parents[2] / "docs" / "robustness.md"
OUTCOME = {"error": "refused, naming", "accepted": "accepted", "untrained":
           "TrainingError, naming"}

HEAD = """# Robustness: the hostile-input suite

Every case below is a test in `tests/robustness/` (run with `make test`, or alone with
`.venv/bin/pytest tests/robustness`). Each feeds one bad (or borderline) input to the
library the way a user would, and asserts the *class* of outcome:

- **refused**: an `LtrError` (the CLI: a non-zero exit, one line on stderr, no traceback)
  whose message contains every string in the last column: the file, column, config key or
  request field at fault;
- **accepted**: the input is valid or repaired in a documented way (e.g. Unix
  milliseconds, time-zone offsets converted to UTC) and the call succeeds; the test checks
  the result;
- **TrainingError**: nothing was trained (no optimiser step, no completed trial), so
  nothing is saved or scored as if it were a result.

Interruption cases SIGKILL a command at a named point of writing its output set
(`LTR_KILL_AT=<point>:<command>`, `ltr.io.fault_point`): the previous set must be intact
byte for byte and the next run must succeed and leave no temporaries.

The table is generated from the case lists (`python -m tests.robustness.table`); a test
fails when it is out of date.

## What the suite covers

- **Data**: the data contract of `docs/data.md` (required columns, listed all at once;
  kinds; ranges; keys; Unix timestamps in s/ms/us/ns detected by magnitude, mixed units
  refused; ISO timestamps with offsets converted to UTC, a column mixing zoned and local
  times refused; tables with no rows; corrupt, truncated, empty, mis-encoded files).
- **Configuration**: declared ranges (`ltr.checks`) and names, checked before any data
  are prepared (`ltr fit` checks the model section before the data module prepares).
- **Packages**: `manifest.json` lists every file (unlisted files and links refused), its
  own digest is checked, kind and outputs must match the model files, and with
  `LTR_PACKAGE_KEY` set only packages carrying a valid HMAC-SHA256 signature load
  (`docs/serving.md`, Integrity).
- **Requests**: the same ranges as the catalog, finite 64-bit floats, valid Unicode,
  request fields named with their index (`products[2].price`); over HTTP, 422 with
  `{"error", "field"}` for every bad body.
- **Interruptions**: `ltr label`, `ltr benchmark`, the sweep export and `ltr export`
  write their sets whole or not at all (`ltr.io.atomic_dir`).
"""


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for name in MODULES:
        module = importlib.import_module(f"tests.robustness.{name}")
        cases.extend(module.CASES)
    return cases


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(cases: list[Case]) -> str:
    by_area = Counter(c.area for c in cases)
    by_outcome = Counter(c.expect for c in cases)
    lines = [HEAD, "## Counts", "",
             f"{len(cases)} cases: " + ", ".join(f"{n} {a}" for a, n in by_area.items())
             + "; " + ", ".join(f"{n} {OUTCOME[o].split(',')[0]}" for o, n in
                                by_outcome.items()) + ".", "",
             "## Cases", "",
             "| case | area | input | expected | message names |",
             "|---|---|---|---|---|"]
    for c in cases:
        names = ", ".join(f"`{_cell(n)}`" for n in c.names)
        lines.append(f"| `{c.id}` | {c.area} | {_cell(c.what)} | "
                     f"{OUTCOME[c.expect].split(',')[0]} | {names} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render(all_cases())
    if "--check" in argv:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python -m tests.robustness.table",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
