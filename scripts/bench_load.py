"""Load test of ``ltr serve`` over HTTP (the figures in docs/serving.md, "Load").

    python scripts/bench_load.py --package runs/packages/mmoe          # 60 s per level
    python scripts/bench_load.py --seconds 10 --json load.json          # builds packages

It starts ``ltr serve PACKAGE --workers W`` in a subprocess on a free port (without
``--package`` it first fits and exports the packages of ``scripts/bench_serving.py``,
through its builder, and serves the MMoE) and drives it with 1, 8 and 32 concurrent
clients for ``--seconds`` each. Each client is a thread with one keep-alive connection
(``http.client``) sending, one after another:

* ``cold`` (45%): a query the package has never seen, a new one every request (encoded
  by the server on the fly);
* ``warm`` (50%): a query of the training data (precomputed embedding);
* ``bad`` (5%): an invalid request (malformed JSON, an unknown key, empty products, an
  unknown product id, a price that is not a number, ``top_k: 0``), which must get 422;

each with ``--candidates`` catalog products drawn at random. Per level it prints
requests/s (all requests), p50/p99 latency of the good requests, errors among the good
ones (must be 0), bad requests answered 422 (must be all), and the server's RSS (summed
over its process tree) at the start and end of the level. Then, with
``--kill-workers`` (2) workers, it SIGKILLs one worker in the middle of a load of 8
clients and reports the requests that failed, whether the service kept answering and
how long the supervisor took to bring the worker count back.

The clients run in this process, on the same machine as the server: on a small machine
they take CPU from it, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (psutil when installed, else /proc)."""
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children()]
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - the process is gone
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``'s whole process tree."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pids(master: int) -> list[int]:
    """The uvicorn worker processes of ``ltr serve --workers N`` (multiprocessing spawn
    children of the master; not its resource tracker)."""
    return sorted(p for p in children(master)
                  if "spawn_main" in (c := cmdline(p)) and "resource_tracker" not in c)


def start_server(package: Path | str, port: int, workers: int = 1, threads: int = 1,
                 log: Path | None = None) -> subprocess.Popen:
    """``ltr serve`` in its own session (so :func:`stop_server` can end all of it)."""
    cmd = [sys.executable, "-m", "ltr.cli", "serve", str(package), "--port", str(port),
           "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with it
    env = {**os.environ, "LTR_PROGRESS": "0"}
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, cwd=ROOT)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ltr serve exited with {proc.returncode} before it answered")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"ltr serve did not answer /health within {timeout:.0f}s")


def stop_server(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the server (the master stops its workers), then SIGKILL what is left of
    the session it was started in."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what it started
    proc.wait()


# ---------------------------------------------------------------- requests
class Workload:
    """Request bodies: cold, warm and bad, from the package's catalog and queries."""

    def __init__(self, package: Path, candidates: int, seed: int = 0) -> None:
        from ltr.serving import RankingService

        service = RankingService(package)
        self.ids = [int(i) if isinstance(i, np.integer) else i
                    for i in service.catalog.columns["product_id"]]
        self.known = list(service.text.query_index) if service.text else []
        self.title = service.schema.title_column
        words = {w for t in (service.catalog_texts or [])[:5000] for w in t.lower().split()
                 if w.isalpha() and len(w) > 2}
        self.words = sorted(words) or ["sofa", "chair", "table", "lamp", "oak", "grey"]
        self.seen = set(self.known)
        self.candidates = min(candidates, len(self.ids))
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        del service

    def cold_query(self) -> str:
        with self.lock:
            while True:
                q = " ".join(self.rng.choices(self.words, k=self.rng.randint(2, 4)))
                if q not in self.seen:
                    self.seen.add(q)
                    return q

    def body(self, rng: random.Random) -> tuple[str, bytes]:
        """``(kind, JSON body)``."""
        products = rng.sample(self.ids, self.candidates)
        r = rng.random()
        if r < 0.05:
            return "bad", self.bad(rng, products)
        if r < 0.5 or not self.known:
            query = self.cold_query()
            kind = "cold"
        else:
            query = rng.choice(self.known)
            kind = "warm"
        return kind, json.dumps({"query": query, "products": products}).encode()

    def bad(self, rng: random.Random, products: list) -> bytes:
        query = rng.choice(self.known) if self.known else "sofa"
        record = {"product_id": "new-1", self.title: "grey sofa", "price": "abc"}
        bodies = [
            {"query": query, "products": products, "colour": "red"},
            {"query": query, "products": []},
            {"query": query, "products": [*products[:5], "no-such-product"]},
            {"query": query, "products": [*products[:5], record]},
            {"query": query, "products": products, "top_k": 0},
        ]
        i = rng.randrange(len(bodies) + 1)
        if i == len(bodies):
            return b'{"query": "sofa", "products": [1, 2'  # malformed JSON
        return json.dumps(bodies[i]).encode()


class Client(threading.Thread):
    """One keep-alive connection sending requests until ``stop`` is set; records
    ``(kind, status or -1 on a connection failure, seconds, end time)``."""

    def __init__(self, port: int, work: Workload, stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.work, self.stop = port, work, stop
        self.rng = random.Random(seed)
        self.results: list[tuple[str, int, float, float]] = []
        self.conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.conn.request("POST", "/rank", body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        resp.read()
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status

    def run(self) -> None:
        while not self.stop.is_set():
            kind, body = self.work.body(self.rng)
            t0 = time.perf_counter()
            try:
                status = self.send(body)
            except (OSError, http.client.HTTPException):
                status = -1
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
            t1 = time.perf_counter()
            self.results.append((kind, status, t1 - t0, time.time()))
        if self.conn is not None:
            self.conn.close()


def drive(port: int, work: Workload, clients: int, seconds: float, seed: int = 0,
          during=None) -> tuple[list[tuple[str, int, float, float]], float]:
    """All results of ``clients`` clients over ``seconds``, and the elapsed time.
    ``during(t0)`` runs in this thread while they do."""
    stop = threading.Event()
    threads = [Client(port, work, stop, seed * 1000 + i) for i in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    if during is not None:
        during(t0)
    time.sleep(max(0.0, seconds - (time.time() - t0)))
    stop.set()
    for t in threads:
        t.join()
    return [r for t in threads for r in t.results], time.time() - t0


def summarise(results: list[tuple[str, int, float, float]], elapsed: float) -> dict:
    good = [r for r in results if r[0] != "bad"]
    bad = [r for r in results if r[0] == "bad"]
    ok = [r[2] * 1000 for r in good if r[1] == 200]
    cold = [r[2] * 1000 for r in good if r[1] == 200 and r[0] == "cold"]
    warm = [r[2] * 1000 for r in good if r[1] == 200 and r[0] == "warm"]

    def pct(ms: list[float], q: float) -> float | None:
        return round(float(np.percentile(ms, q)), 1) if ms else None

    return {"requests": len(results), "seconds": round(elapsed, 1),
            "requests_per_s": round(len(results) / elapsed, 1),
            "good": len(good), "good_errors": sum(r[1] != 200 for r in good),
            "p50_ms": pct(ok, 50), "p99_ms": pct(ok, 99),
            "cold_p50_ms": pct(cold, 50), "warm_p50_ms": pct(warm, 50),
            "bad": len(bad), "bad_422": sum(r[1] == 422 for r in bad)}


def gib(n: int) -> str:
    return f"{n / 2 ** 30:.2f}"


# ---------------------------------------------------------------- phases
def load_levels(package: Path, work: Workload, levels: list[int], seconds: float,
                workers: int, log: Path) -> list[dict]:
    port = free_port()
    proc = start_server(package, port, workers, log=log)
    rows = []
    try:
        wait_healthy(port, proc)
        drive(port, work, 2, 3.0, seed=99)  # warm-up: first requests load lazy parts
        for level in levels:
            rss0 = rss_bytes(proc.pid)
            results, elapsed = drive(port, work, level, seconds, seed=level)
            row = {"clients": level, "workers": workers, **summarise(results, elapsed),
                   "rss_start": rss0, "rss_end": rss_bytes(proc.pid)}
            rows.append(row)
            print(f"   {level} clients: {row['requests_per_s']} requests/s, p50 "
                  f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms, good errors "
                  f"{row['good_errors']}, bad 422 {row['bad_422']}/{row['bad']}", flush=True)
    finally:
        stop_server(proc)
    return rows


def kill_phase(package: Path, work: Workload, workers: int, seconds: float,
               clients: int, log: Path) -> dict:
    """SIGKILL one worker at a third of the run; failures and recovery."""
    port = free_port()
    proc = start_server(package, port, workers, log=log)
    info: dict = {"workers": workers, "clients": clients}
    try:
        wait_healthy(port, proc)
        deadline = time.time() + 120
        while len(worker_pids(proc.pid)) < workers and time.time() < deadline:
            time.sleep(0.2)
        before = worker_pids(proc.pid)
        info["workers_before"] = len(before)
        drive(port, work, 2, 3.0, seed=98)

        def kill(t0: float) -> None:
            time.sleep(seconds / 3)
            victim = before[0]
            info["killed_at"] = time.time()
            os.kill(victim, signal.SIGKILL)
            while time.time() < t0 + seconds:
                now = worker_pids(proc.pid)
                if len(now) == workers and victim not in now:
                    info["replaced_after_s"] = round(time.time() - info["killed_at"], 1)
                    break
                time.sleep(0.1)

        results, elapsed = drive(port, work, clients, seconds, seed=7, during=kill)
        killed_at = info["killed_at"]
        good = [r for r in results if r[0] != "bad"]
        failed = [r for r in good if r[1] != 200]
        after = [r for r in good if r[3] > killed_at + 1.0]
        info.update(summarise(results, elapsed))
        info["failed"] = len(failed)
        info["failed_statuses"] = sorted({r[1] for r in failed})
        info["failed_within_s_of_kill"] = round(max((abs(r[3] - killed_at) for r in failed),
                                                    default=0.0), 2)
        info["good_after_kill"] = sum(r[1] == 200 for r in after)
        info["good_after_kill_errors"] = sum(r[1] != 200 for r in after)
        info["workers_after"] = len(worker_pids(proc.pid))
        info["server_alive"] = proc.poll() is None
    finally:
        stop_server(proc)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, help="model package (default: build one)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "serving",
                    help="where to build the packages without --package")
    ap.add_argument("--seconds", type=float, default=60.0, help="per level")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--workers", type=int, default=1, help="for the levels")
    ap.add_argument("--kill-workers", type=int, default=2,
                    help="workers of the kill phase (0: skip it)")
    ap.add_argument("--kill-seconds", type=float, default=30.0)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--log", type=Path, default=None, help="the server's log file")
    args = ap.parse_args()

    package = args.package
    if package is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_serving import build_packages

        print("== fitting and exporting the packages (scripts/bench_serving.py)", flush=True)
        package = build_packages(args.out)["mmoe"]
    log = args.log or Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_load_{os.getpid()}.log"
    work = Workload(package, args.candidates)
    print(f"== {package}: {len(work.ids)} catalog products, {len(work.known)} known "
          f"queries; server log {log}", flush=True)
    levels = load_levels(package, work, args.levels, args.seconds, args.workers, log)
    kill = None
    if args.kill_workers:
        print(f"== killing a worker of {args.kill_workers} under load", flush=True)
        kill = kill_phase(package, work, args.kill_workers, args.kill_seconds, 8, log)

    print(f"\n`ltr serve` ({args.workers} worker(s), 1 torch thread), {args.candidates} "
          f"candidates per request, {args.seconds:.0f} s per level; 45% cold, 50% warm, "
          "5% bad requests\n")
    print("| clients | requests/s | p50 ms | p99 ms | cold p50 ms | warm p50 ms | "
          "errors (good) | bad -> 422 | RSS start GiB | RSS end GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in levels:
        print(f"| {r['clients']} | {r['requests_per_s']:.0f} | {r['p50_ms']} | {r['p99_ms']} "
              f"| {r['cold_p50_ms']} | {r['warm_p50_ms']} | {r['good_errors']} of "
              f"{r['good']} | {r['bad_422']} of {r['bad']} | {gib(r['rss_start'])} | "
              f"{gib(r['rss_end'])} |")
    if kill:
        print(f"\nWorker kill ({kill['workers']} workers, {kill['clients']} clients, "
              f"{args.kill_seconds:.0f} s, SIGKILL at {args.kill_seconds / 3:.0f} s): "
              f"{kill['failed']} of {kill['good']} good requests failed (statuses "
              f"{kill['failed_statuses']}, all within {kill['failed_within_s_of_kill']} s "
              f"of the kill); {kill['good_after_kill']} good requests answered after it "
              f"({kill['good_after_kill_errors']} errors); worker replaced after "
              f"{kill.get('replaced_after_s', 'n/a')} s; workers after: "
              f"{kill['workers_after']}; {kill['requests_per_s']:.0f} requests/s overall")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"package": str(package), "workers": args.workers,
                                         "seconds": args.seconds, "levels": levels,
                                         "kill": kill}, indent=2))


if __name__ == "__main__":
    main()
