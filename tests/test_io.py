"""Output sets appear whole or not at all (:func:`ltr.io.atomic_dir`): killed writers leave
the previous set intact, their temporaries are removed by the next writer (never a live
process's), and an unrelated folder is never replaced."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ltr.errors import ConfigError
from ltr.io import (
    OUTPUT_MARKER,
    _temporary_name,
    atomic_dir,
    atomic_path,
    check_output_dir,
    remove_stale,
)

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes); {} when it is absent."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(path: Path) -> list[str]:
    """Temporaries of ``path`` in its parent folder."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


# One writer in a child process: a set of two files written with a kill point between
# them, then put in place. Imports only ltr.io (no torch): a fraction of a second.
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ltr.io import atomic_dir, fault_point

    out, text = Path(sys.argv[1]), sys.argv[2]
    with atomic_dir(out, owner="demo", main_files=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text(text)
        fault_point("between-files", "demo")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text(text * 2)
""")


def write_set(out: Path, text: str, kill_at: str | None = None,
              exchange: bool = True) -> subprocess.CompletedProcess:
    env = child_env(kill_at)
    if not exchange:
        env["LTR_NO_EXCHANGE"] = "1"
    return subprocess.run([sys.executable, "-c", WRITER, str(out), text], env=env,
                          capture_output=True, text=True, timeout=60)


def run_ltr(args: list[str], kill_at: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``ltr ARGS`` in a child process, SIGKILLed at ``kill_at`` (``$LTR_KILL_AT``)."""
    return subprocess.run([sys.executable, "-m", "ltr.cli", *args], env=child_env(kill_at),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def child_env(kill_at: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LTR_KILL_AT", None)
    if kill_at:
        env["LTR_KILL_AT"] = kill_at
    return env


def test_killed_writer_leaves_the_previous_set_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    killed = write_set(out, "first", "between-files:demo")
    assert killed.returncode == -9 and not out.exists()  # no previous set: still none
    assert write_set(out, "first").returncode == 0
    first = snapshot(out)
    assert set(first) == {"a.txt", "sub/b.txt", OUTPUT_MARKER}
    assert leftovers(out) == []  # the killed run's temporary is gone
    for point in ("between-files:demo", "before-rename:out"):
        assert write_set(out, "second", point).returncode == -9
        assert snapshot(out) == first, point
    assert len(leftovers(out)) == 1  # each run removed the one killed before it
    # killed after the atomic swap, before the old set is deleted: the new set is in place
    assert write_set(out, "second", "old-aside:out").returncode == -9
    assert snapshot(out)["a.txt"] == b"second" and len(leftovers(out)) == 1
    assert write_set(out, "third").returncode == 0
    assert snapshot(out)["sub/b.txt"] == b"thirdthird" and leftovers(out) == []


def test_without_an_atomic_swap_a_set_moved_aside_is_put_back(tmp_path):
    """Where renameat2(RENAME_EXCHANGE) is unavailable the old set is moved aside, then
    the new one renamed in; killed between the two, the next writer puts the old back."""
    out = tmp_path / "out"
    assert write_set(out, "first").returncode == 0
    first = snapshot(out)
    assert write_set(out, "second", "old-aside:out", exchange=False).returncode == -9
    assert not out.exists() and len(leftovers(out)) == 2  # the old set and the new one
    remove_stale(out)
    assert snapshot(out) == first and leftovers(out) == []
    assert write_set(out, "third", exchange=False).returncode == 0
    assert snapshot(out)["a.txt"] == b"third" and leftovers(out) == []


def test_a_live_process_temporary_is_never_removed(tmp_path):
    out = tmp_path / "out"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = _temporary_name(out, "tmp")
        theirs = mine.with_name(mine.name.replace(f".{os.getpid()}-", f".{live.pid}-"))
        other_host = mine.with_name(mine.name.replace(f"-{mine.name.split('-')[1]}",
                                                      "-elsewhere.example.0000abcd.tmp"))
        legacy = out.with_name(".out.x1y2z3ab.tmp")  # mkstemp style: owner unknown
        for p in (mine, theirs, other_host, legacy):
            p.mkdir(parents=True)
        assert remove_stale(out) == []
    finally:
        live.kill()
        live.wait()
    assert remove_stale(out) == [theirs]
    assert sorted(leftovers(out)) == sorted(p.name for p in (mine, other_host, legacy))


def test_an_unrelated_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    refused = f"'out'.*{out}.*not an output of `ltr demo`"
    with pytest.raises(ConfigError, match=refused), \
            atomic_dir(out, owner="demo", main_files=("a.txt",)):
        pytest.fail("the body must not run")
    assert snapshot(out) == {"notes.txt": b"keep me"} and leftovers(out) == []
    (out / "a.txt").write_text("one of the command's names beside a foreign file")
    with pytest.raises(ConfigError, match=r"holds notes\.txt"):
        check_output_dir(out, "demo", ("a.txt",))
    (out / "notes.txt").unlink()  # only the command's names: an earlier set without marker
    check_output_dir(out, "demo", ("a.txt",))
    with atomic_dir(out, owner="demo", main_files=("a.txt",)) as tmp:
        (tmp / "a.txt").write_text("new")
    (out / "notes.txt").write_text("added later")  # a marked set is the command's
    check_output_dir(out, "demo")
    with pytest.raises(ConfigError, match="holds the output of `ltr demo`"):
        check_output_dir(out, "label", key="out")
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output_dir(empty, "demo")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_output_dir(out / "a.txt", "demo")


def test_a_failed_body_leaves_everything_as_it_was(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, owner="demo") as tmp:
        (tmp / "a.txt").write_text("old")
    before = snapshot(out)
    with pytest.raises(RuntimeError), atomic_dir(out, owner="demo") as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("boom")
    assert snapshot(out) == before and leftovers(out) == []
    target = tmp_path / "f.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as t:
        t.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists() and leftovers(target) == []
