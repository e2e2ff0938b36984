"""Progress lines on long steps, and `ltr --quiet` silencing them."""

from __future__ import annotations

import time

from ltr import progress
from ltr.cli import main as ltr


def test_steps_print_when_long_enough_and_not_quiet(capsys):
    progress.set_quiet(False)
    with progress.step("slow step", min_seconds=0.0):
        time.sleep(0.01)
    with progress.step("fast step", min_seconds=10.0):
        pass
    err = capsys.readouterr().err
    assert "slow step (" in err and "fast step" not in err
    progress.set_quiet(True)
    with progress.step("quiet step", min_seconds=0.0):
        pass
    assert "quiet step" not in capsys.readouterr().err
    progress.set_quiet(False)


def test_quiet_flag_before_the_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LTR_PROGRESS", "1")
    assert ltr(["--quiet", "summary", "--data", str(tmp_path / "nope")]) == 2
    assert not progress.enabled()
    assert ltr(["summary", "--data", str(tmp_path / "nope")]) == 2
    assert progress.enabled()
    monkeypatch.setenv("LTR_PROGRESS", "0")
    assert not progress.enabled()
