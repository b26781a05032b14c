"""The reference LMS's import speed, unthrottled, against a same-run baseline.

Figures:
- import rows/s: a completion import of N rows (each: user look-up, enrollment, awarded credit,
  reporting queue entry, row result, counters, one transaction) timed by the server's own
  started_at/finished_at. Baseline: a bare sqlite3 loop inserting the same rows, one transaction
  each, same WAL settings. Target >= 2,000 rows/s.
- import rows/s with one console watching `/events` (every row is an event), against the same
  import unwatched.
- API latency while importing: median GET /imports/{id} time while an unthrottled import runs,
  against the same request on an idle server (the importer must not starve HTTP handlers).
- Upload memory (issue 12): peak RSS of the server process (VmHWM, Linux) that takes a 10 MB and
  a 100 MB file of ordinary rows (a fresh server each), processes it for a few seconds and serves
  GET /remaining and GET /file, as a ratio to the file size; flat = the two peaks close. Also a
  100 MB file that is one line (the old record regex kept a frame per character of it).

Run alone: `python bench/run.py bench_server` (or `python bench/bench_server.py`).
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.sandbox import dataset, start_sandbox  # noqa: E402

ROWS = 5000
TARGET_ROWS_PER_SECOND = 2000


def _rows(n: int) -> bytes:
    return b"external_user_id,complete,date_completed\n" + b"".join(
        f"b{i},1,2026-06-01\n".encode() for i in range(1, n + 1))


def _seconds(a: str, b: str) -> float:
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


def baseline_sqlite(workdir: Path, n: int) -> float:
    """Rows/s of a bare loop: one INSERT per row, one transaction each, WAL + synchronous=NORMAL."""
    path = workdir / "baseline.sqlite3"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, user TEXT, complete INTEGER, date_completed TEXT)")
    lines = _rows(n).decode().splitlines()[1:]
    started = time.perf_counter()
    for line in lines:
        user, complete, date = line.split(",")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO rows (user, complete, date_completed) VALUES (?, ?, ?)", (user, int(complete), date))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def _latency(client: httpx.Client, path: str, samples: int) -> float:
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _watched_rate(lms, client: httpx.Client) -> float:
    """The same import again (on another course) while a console watches GET /events."""
    stop = threading.Event()
    events = [0]

    def watch():
        with httpx.stream("GET", lms.url("/events"), headers=lms.auth(), timeout=30) as stream:
            for line in stream.iter_lines():
                events[0] += line.startswith("event: import")
                if stop.is_set():
                    break

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)
    imp = lms.submit(_rows(ROWS), course="C-VAR").json()
    state = lms.wait_import(imp["id"], timeout=120)
    stop.set()
    assert state["rows_processed"] == ROWS and events[0] > 1, (state, events)
    return ROWS / _seconds(state["started_at"], state["finished_at"])


MB = 1_000_000
MEMORY_FILES = ((10 * MB, False), (100 * MB, False), (100 * MB, True))  # (size, one line)


def _memory_file(path: Path, size: int, one_line: bool) -> None:
    with open(path, "wb") as out:
        if one_line:
            out.write(b"external_user_id,first_name,complete\nx1,")
            block = b"a" * MB
            for _ in range(size // MB):
                out.write(block)
            out.write(b",1\n")
            return
        out.write(b"external_user_id,external_email,first_name,last_name,complete,date_completed\n")
        written, i = 0, 0
        while written < size:
            lines = b"".join(f"x{n},x{n}@example.org,Jane,Doe,1,2026-06-01\n".encode() for n in range(i, i + 10_000))
            out.write(lines)
            written, i = written + len(lines), i + 10_000


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM: the upload memory figures need Linux")


def _server_peak(path: Path) -> int:
    """Peak RSS of a fresh reference LMS that takes `path` as an import, works on it a few seconds,
    and serves its /remaining and /file (both stream the stored file)."""
    size = path.stat().st_size
    with start_sandbox(dataset(), rows_per_second=None) as lms, lms.client() as client, open(path, "rb") as fh:
        client.timeout = 300
        r = client.post("/imports", data={"importer": "course", "course": "C-FIXED"},
                        files={"file": (path.name, fh, "text/csv")})
        assert r.status_code == 201, r.text
        imp = r.json()
        time.sleep(3)
        with client.stream("GET", f"/imports/{imp['id']}/file") as got:
            assert sum(len(chunk) for chunk in got.iter_bytes()) == size
        with client.stream("GET", f"/imports/{imp['id']}/remaining") as got:
            assert got.status_code == 200 and sum(len(chunk) for chunk in got.iter_bytes()) > 0
        return _peak_rss(lms.process.pid)


def upload_memory(workdir: Path) -> list[dict]:
    peaks = {}
    for size, one_line in MEMORY_FILES:
        path = workdir / f"upload-{size // MB}mb{'-one-line' if one_line else ''}.csv"
        _memory_file(path, size, one_line)
        peaks[(size, one_line)] = (_server_peak(path), path.stat().st_size)
        path.unlink()
    mib = 1 << 20
    rows = []
    for (size, one_line), (peak, actual) in peaks.items():
        what = f"{size // MB} MB file{', one line' if one_line else ''}"
        rows.append({"name": f"server peak RSS importing a {what}", "value": peak / mib, "unit": "MiB",
                     "baseline_name": "the file's size", "baseline": actual / mib, "ratio": peak / actual,
                     "target": "<= 1x the file" if size >= 100 * MB else "", "ok": size < 100 * MB or peak <= actual})
    small, big = peaks[(10 * MB, False)][0], peaks[(100 * MB, False)][0]
    rows.append({"name": "server peak RSS, 100 MB file against 10 MB file (flat = 1x)", "value": big / mib, "unit": "MiB",
                 "baseline_name": "10 MB file", "baseline": small / mib, "ratio": big / small,
                 "target": "<= 1.25x", "ok": big <= 1.25 * small})
    return rows


def run(workdir: Path) -> list[dict]:
    users = [{"external_user_id": f"b{i}"} for i in range(1, ROWS + 1)]
    with start_sandbox(dataset(users=users), rows_per_second=None) as lms, lms.client() as client:
        idle_ms = _latency(client, "/imports?limit=1", 30)
        imp = lms.submit(_rows(ROWS), course="C-FIXED").json()
        busy = []
        while True:
            t = time.perf_counter()
            state = client.get(f"/imports/{imp['id']}").json()
            busy.append(time.perf_counter() - t)
            if state["state"] not in ("queued", "running"):
                break
            time.sleep(0.01)
        assert state["state"] == "completed" and state["rows_processed"] == ROWS, state
        rate = ROWS / _seconds(state["started_at"], state["finished_at"])
        busy_ms = statistics.median(busy) * 1000
        watched_rate = _watched_rate(lms, client)
    base = baseline_sqlite(workdir, ROWS)
    return upload_memory(workdir) + [
        {"name": f"import rows/s, unthrottled ({ROWS} completion rows)", "value": rate, "unit": "rows/s",
         "baseline_name": "bare sqlite insert, 1 tx/row", "baseline": base, "ratio": rate / base,
         "target": f">= {TARGET_ROWS_PER_SECOND} rows/s", "ok": rate >= TARGET_ROWS_PER_SECOND},
        {"name": "import rows/s, unthrottled, one /events watcher", "value": watched_rate, "unit": "rows/s",
         "baseline_name": "same import, nobody watching", "baseline": rate, "ratio": watched_rate / rate,
         "target": f">= {TARGET_ROWS_PER_SECOND} rows/s", "ok": watched_rate >= TARGET_ROWS_PER_SECOND},
        {"name": "GET /imports/{id} median while importing", "value": busy_ms, "unit": "ms",
         "baseline_name": "same request, idle server", "baseline": idle_ms, "ratio": busy_ms / idle_ms,
         "target": "<= 50 ms", "ok": busy_ms <= 50},
    ]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in run(Path(tmp)):
            print(row)
