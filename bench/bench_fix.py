"""`fix --sanitize` memory on files where every row has a change (issue 12, item 4): the manifest
is streamed, so peak RSS stays flat in the file's size. Each run is the real CLI command in its
own process; peak RSS from getrusage.

Figures: peak RSS at 1M rows and at 100 MB, target <= 150 MiB; flat = the 100 MB run against the
same command on a 10 MB file of the same rows (target <= 1.25x). Baseline: a bare csv.reader ->
csv.writer copy of the same 1M rows. Time is informational.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from child_peak import PEAK_MIB

ROWS = 1_000_000
MB = 1_000_000
HEADER = "external_user_id,external_email,first_name,last_name,external_course_id,complete,date_completed\r\n"
FIRST = ["Jane", "John", "José", "Zoë", "Łukasz", "Mary", "Ahmed", "Wei", "Anna", "Peter"]
LAST = ["Doe", "Smith", "García", "Müller", "Nowak", "Li", "Brown", "Okafor", "Dubois", "Rossi"]


def generate(path: Path, *, rows: int | None = None, size: int | None = None) -> int:
    """Completion rows, each with a zero-width space in the first name (a change on every row)."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        batch = []
        while (rows is None or written < rows) and (size is None or fh.tell() < size):
            i = written
            batch.append(f"u{i:07d},learner{i}@example.org,{FIRST[i % 10]}\u200b,{LAST[i % 7]},"
                         f"CME-2026-{i % 50:03d},1,2026-03-{1 + i % 28:02d}\r\n")
            written += 1
            if len(batch) >= 10000:
                fh.write("".join(batch))
                batch.clear()
        fh.write("".join(batch))
    return written


_CHILD = PEAK_MIB + r"""
import json, sys, time


kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "copy":
    import csv
    start = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as a, open(out, "w", newline="", encoding="utf-8") as b:
        w = csv.writer(b, lineterminator="\r\n")
        for row in csv.reader(a):
            w.writerow(row)
else:
    from importconsole.cli import main
    start = time.perf_counter()
    code = main(["fix", path, "--out", out, "--sanitize"])
    assert code == 0, code
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mib": _peak_mib()}))
"""


def child(kind: str, path: Path, workdir: Path) -> dict:
    out = workdir / f"{path.stem}.{kind}.csv"
    for leftover in (out, out.with_name(out.name + ".manifest.csv")):
        leftover.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", _CHILD, kind, str(path), str(out)], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if kind == "fix":  # every row changed, and the manifest on disk says so
        with open(out.with_name(out.name + ".manifest.csv"), "rb") as fh:
            result["manifest_rows"] = sum(1 for _ in fh) - 1
    for leftover in (out, out.with_name(out.name + ".manifest.csv")):
        leftover.unlink(missing_ok=True)
    return result


def run(workdir: Path) -> list[dict]:
    workdir = Path(workdir)
    million = workdir / "fix-1m.csv"
    generate(million, rows=ROWS)
    hundred = workdir / "fix-100mb.csv"
    hundred_rows = generate(hundred, size=100 * MB)
    ten = workdir / "fix-10mb.csv"
    generate(ten, size=10 * MB)

    copy = child("copy", million, workdir)
    fixed = child("fix", million, workdir)
    assert fixed["manifest_rows"] == ROWS, fixed
    big = child("fix", hundred, workdir)
    assert big["manifest_rows"] == hundred_rows, big
    small = child("fix", ten, workdir)
    for path in (million, hundred, ten):
        path.unlink()
    return [
        {"name": f"fix --sanitize peak RSS, {ROWS:,} rows, a change on every row", "value": fixed["rss_mib"],
         "unit": "MiB", "baseline_name": "bare csv.reader -> csv.writer copy", "baseline": copy["rss_mib"],
         "ratio": fixed["rss_mib"] / copy["rss_mib"], "target": "<= 150 MiB", "ok": fixed["rss_mib"] <= 150},
        {"name": f"fix --sanitize peak RSS, 100 MB ({hundred_rows:,} rows, a change on every row)",
         "value": big["rss_mib"], "unit": "MiB", "baseline_name": "the same on 10 MB", "baseline": small["rss_mib"],
         "ratio": big["rss_mib"] / small["rss_mib"], "target": "<= 150 MiB and <= 1.25x (flat)",
         "ok": big["rss_mib"] <= 150 and big["rss_mib"] <= 1.25 * small["rss_mib"]},
        {"name": f"fix --sanitize, {ROWS:,} rows (informational)", "value": fixed["seconds"], "unit": "s",
         "baseline_name": "bare csv.reader -> csv.writer copy", "baseline": copy["seconds"],
         "ratio": fixed["seconds"] / copy["seconds"], "target": "", "ok": True},
    ]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in run(Path(tmp)):
            print(row)
    os._exit(0)
