"""Validation speed and memory on a realistic 1M-row import file (~80 MiB), against a bare
csv.reader pass and `frictionless validate` measured in the same run; and the first screen of a
1 GB file. Each measured program runs in its own subprocess so its peak RSS is its own.

Targets: offline validation <= 2x csv.reader (also with every value quoted); >= 10x faster than
frictionless; peak memory <= 150 MiB (also when every learner has two rows); first screen of a
1 GB file < 0.3 s.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from child_peak import PEAK_MIB

ROWS = 1_000_000
FRICTIONLESS_ROWS = 100_000  # frictionless takes minutes on 1M rows: measured on a prefix, scaled
GIB = 1 << 30

HEADER = ("external_user_id,external_email,first_name,last_name,external_course_id,complete,"
          "date_completed,credit_type,credits\r\n")
FIRST = ["Jane", "John", "José", "Zoë", "Łukasz", "Mary", "Ahmed", "Wei", "Anna", "Peter", "O'Brien", "Anne-Marie"]
LAST = ["Doe", "Smith", "García", "Müller", "Nowak", "Li", "Brown", "Okafor", "Dubois", "Rossi"]
TYPES = ["ama", "ancc", "acpe", "aapa"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Course records as an LMS export makes them: CRLF, UTF-8, names in several scripts."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        batch = []
        for i in range(rows):
            fn, ln = rnd.choice(FIRST), rnd.choice(LAST)
            m, d = rnd.randint(1, 12), rnd.randint(1, 28)
            batch.append(f"u{i:07d},{fn.lower()}.{ln.lower()}{i}@example.org,{fn},{ln},CME-2026-{i % 50:03d},1,"
                         f"2026-{m:02d}-{d:02d},{TYPES[i % 4]},{rnd.choice(['1.00', '0.50', '2.25', '1.50'])}\r\n")
            if len(batch) >= 10000:
                fh.write("".join(batch))
                batch.clear()
        fh.write("".join(batch))


def prefix(src: Path, dst: Path, rows: int) -> None:
    with open(src, "rb") as a, open(dst, "wb") as b:
        for n, line in enumerate(a):
            if n > rows:
                break
            b.write(line)


def quote_all(src: Path, dst: Path, rows: int) -> None:
    import csv

    with open(src, newline="", encoding="utf-8") as a, open(dst, "w", newline="", encoding="utf-8") as b:
        writer = csv.writer(b, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        for n, record in enumerate(csv.reader(a)):
            if n > rows:
                break
            writer.writerow(record)


def two_rows_per_learner(path: Path, rows: int) -> None:
    """Every learner on two rows with the same key: an enrollment row (complete=0) for each, then
    a completion row for each, as an LMS export of enrollments followed by completions makes them.
    No credit columns: the learner and course are the key."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("external_user_id,external_email,first_name,last_name,external_course_id,complete,date_completed\r\n")
        for done in (False, True):
            batch = []
            for i in range(rows // 2):
                fn, ln = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
                end = f"1,2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}" if done else "0,"
                batch.append(f"u{i:07d},{fn.lower()}.{ln.lower()}{i}@example.org,{fn},{ln},CME-2026-{i % 50:03d},{end}\r\n")
                if len(batch) >= 10000:
                    fh.write("".join(batch))
                    batch.clear()
            fh.write("".join(batch))


def scatter_duplicates(src: Path, dst: Path, every: int) -> None:
    """src with, after every `every` rows, a copy of the row 3,000 rows back (an identical duplicate)."""
    from collections import deque

    back = deque(maxlen=3000)
    with open(src, "rb") as a, open(dst, "wb") as b:
        b.write(a.readline())
        for n, line in enumerate(a, start=1):
            b.write(line)
            back.append(line)
            if n % every == 0 and len(back) == back.maxlen:
                b.write(back[0])


def every_row_a_finding(path: Path, mib: int) -> None:
    """About `mib` MiB of rows, each with a no-break space after the first name (as bench/adversarial.py's
    memory part makes them): one special-characters finding per row."""
    head = (b"external_user_id,first_name,last_name,enrollment_start,complete,date_completed,credit_type,credits,"
            b"participant_category\n")
    rows = (mib << 20) // len(b"U0000000,Ada,Last0,2026-09-01,1,2026-10-01,,,\n")
    with open(path, "wb") as fh:
        fh.write(head)
        for start in range(0, rows, 10_000):
            fh.write(b"".join(b"U%07d,Zo\xc3\xab\xc2\xa0,Last%d,2026-09-01,1,2026-10-01,,,\n" % (i, i)
                              for i in range(start, min(rows, start + 10_000))))


# Each child prints {"seconds": ..., "rss_mib": ...} (its own peak: VmHWM on Linux).
_CHILD = PEAK_MIB + r"""
import json, sys, time


kind, path = sys.argv[1], sys.argv[2]
import csv
from importconsole.importfile.index import RowIndex
from importconsole.importfile.reader import open_import_file
from importconsole.importfile.validate import validate
start = time.perf_counter()  # imports done: both sides timed on the work alone
if kind == "csv":
    with open(path, newline="", encoding="utf-8") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
elif kind == "validate":
    report = validate(path)
    rows = report.rows
    assert report.errors == 0, report.summary
elif kind == "validate-any":  # a file with findings (duplicates): memory and time only
    rows = validate(path).rows
elif kind == "validate-refused":  # one huge line: refused with a sentence; memory only
    from importconsole.importfile.reader import ImportFileError
    try:
        validate(path)
        raise SystemExit("the huge line was not refused")
    except ImportFileError as exc:
        assert "field-size cap" in str(exc), str(exc)
    rows = 0
elif kind == "first-screen":
    records = RowIndex(open_import_file(path)).records(1, 50)
    rows = len(records)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": rows, "rss_mib": _peak_mib()}))
"""


def child(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, kind, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def frictionless_seconds(path: Path) -> float | None:
    exe = shutil.which("frictionless") or str(Path(sys.executable).with_name("frictionless"))
    if not Path(exe).exists():
        return None
    # frictionless refuses absolute paths ("not safe"): run it beside the file.
    start = time.perf_counter()
    done = subprocess.run([exe, "validate", "--json", path.name], capture_output=True, text=True, cwd=path.parent)
    seconds = time.perf_counter() - start
    report = json.loads(done.stdout)
    task = report["tasks"][0]
    if not task["valid"] or task["stats"].get("rows", FRICTIONLESS_ROWS) < FRICTIONLESS_ROWS:
        raise RuntimeError(f"frictionless did not validate the file: {task['errors'][:1]}")
    return seconds


def one_huge_line(path: Path, mib: int) -> None:
    """A header, then one data line whose second value is `mib` MiB (written in pieces)."""
    with open(path, "wb") as out:
        out.write(HEADER.encode() + b"U1,")
        for _ in range(mib):
            out.write(b"z" * (1 << 20))
        out.write(b"\n")


def huge_line_rows(workdir: Path, validated_mib: float) -> list[dict]:
    """Peak RSS of validate on one huge line (16 and 64 MiB): flat, whatever the line's length
    (before the reader read lines with a cap: 290 and 1,104 MiB)."""
    peaks = {}
    for mib in (16, 64):
        path = workdir / f"one-line-{mib}.csv"
        one_huge_line(path, mib)
        peaks[mib] = child("validate-refused", path)["rss_mib"]
        path.unlink()
    return [{
        "name": "validate --offline peak RSS, one 16 MiB line", "value": peaks[16], "unit": "MiB",
        "baseline_name": "validate --offline peak RSS, 1M rows", "baseline": validated_mib,
        "ratio": peaks[16] / validated_mib, "target": "<= 150 MiB", "ok": peaks[16] <= 150,
    }, {
        "name": "validate --offline peak RSS, one 64 MiB line", "value": peaks[64], "unit": "MiB",
        "baseline_name": "the same on one 16 MiB line", "baseline": peaks[16], "ratio": peaks[64] / peaks[16],
        "target": "<= 150 MiB and flat (<= 1.1x the 16 MiB line)",
        "ok": peaks[64] <= 150 and peaks[64] <= 1.1 * peaks[16],
    }]


def best_of(n: int, kind: str, path: Path) -> dict:
    runs = [child(kind, path) for _ in range(n)]
    return min(runs, key=lambda r: r["seconds"]) | {"rss_mib": max(r["rss_mib"] for r in runs)}


def best_of_alternating(n: int, kinds: tuple[str, ...], path: Path) -> list[dict]:
    """best_of for each kind, the kinds' runs taking turns: a change in the machine's load
    falls on both sides of the ratio."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for _ in range(n):
        for kind in kinds:
            runs[kind].append(child(kind, path))
    return [min(r, key=lambda x: x["seconds"]) | {"rss_mib": max(x["rss_mib"] for x in r)} for r in runs.values()]


def run(workdir: Path) -> list[dict]:
    workdir = Path(workdir)
    big = workdir / "records-1m.csv"
    generate(big, ROWS)
    size_mib = big.stat().st_size / (1 << 20)
    results: list[dict] = []

    # Best of 3 on a shared machine: the ratio compares like with like.
    baseline = best_of(3, "csv", big)
    validated = best_of(3, "validate", big)
    results.append({
        "name": f"validate --offline, {ROWS:,} rows ({size_mib:.0f} MiB)", "value": validated["seconds"], "unit": "s",
        "baseline_name": "bare csv.reader pass", "baseline": baseline["seconds"],
        "ratio": validated["seconds"] / baseline["seconds"], "target": "<= 2x csv.reader",
        "ok": validated["seconds"] <= 2 * baseline["seconds"],
    })
    results.append({
        "name": "validate --offline peak RSS", "value": validated["rss_mib"], "unit": "MiB",
        "baseline_name": "csv.reader pass peak RSS", "baseline": baseline["rss_mib"],
        "ratio": validated["rss_mib"] / baseline["rss_mib"], "target": "<= 150 MiB",
        "ok": validated["rss_mib"] <= 150,
    })

    results.extend(huge_line_rows(workdir, validated["rss_mib"]))

    # A file with every value quoted (some LMS exports): scan's quoted fast path. Best of 5,
    # taking turns: a 0.2 s run moves more with the machine's load.
    quoted = workdir / "records-quoted-200k.csv"
    quote_all(big, quoted, 200_000)
    q_base, q_val = best_of_alternating(5, ("csv", "validate"), quoted)
    quoted.unlink()
    results.append({
        "name": "validate --offline, every value quoted, 200,000 rows", "value": q_val["seconds"],
        "unit": "s", "baseline_name": "bare csv.reader pass", "baseline": q_base["seconds"],
        "ratio": q_val["seconds"] / q_base["seconds"], "target": "<= 2x csv.reader",
        "ok": q_val["seconds"] <= 2 * q_base["seconds"],
    })

    # Every learner on two rows (enrollment, then completion): half the keys repeat, and the
    # duplicate pass keeps what it remembers per key on disk (before: 360-370 MiB).
    pairs = workdir / "records-1m-two-per-learner.csv"
    two_rows_per_learner(pairs, ROWS)
    p_base, p_val = child("csv", pairs), child("validate", pairs)
    pairs.unlink()
    results.append({
        "name": f"validate --offline peak RSS, {ROWS:,} rows, every learner on two rows", "value": p_val["rss_mib"],
        "unit": "MiB", "baseline_name": "csv.reader pass peak RSS", "baseline": p_base["rss_mib"],
        "ratio": p_val["rss_mib"] / p_base["rss_mib"], "target": "<= 150 MiB", "ok": p_val["rss_mib"] <= 150,
    })

    # A few duplicate rows scattered through the file: only the repeated keys may be kept for the
    # second pass (before the fix this file peaked at 648 MiB).
    dups = workdir / "records-1m-100-duplicates.csv"
    scatter_duplicates(big, dups, every=10_000)
    d_val = child("validate-any", dups)
    dups.unlink()
    results.append({
        "name": "validate --offline peak RSS, 1M rows with 100 scattered duplicate rows", "value": d_val["rss_mib"],
        "unit": "MiB", "baseline_name": "the same rows without them", "baseline": validated["rss_mib"],
        "ratio": d_val["rss_mib"] / validated["rss_mib"], "target": "<= 150 MiB", "ok": d_val["rss_mib"] <= 150,
    })

    # Every row with a finding (a no-break space after the first name), at two sizes: the peak must
    # not grow with the file (findings are capped per rule, counts are not).
    finding_peaks: dict[int, float] = {}
    for mib in (16, 64):
        nbsp = workdir / f"records-nbsp-{mib}.csv"
        every_row_a_finding(nbsp, mib)
        finding_peaks[mib] = child("validate-any", nbsp)["rss_mib"]
        nbsp.unlink()
    results.append({
        "name": "validate --offline peak RSS, 64 MiB file, every row with a finding", "value": finding_peaks[64],
        "unit": "MiB", "baseline_name": "the same on a 16 MiB file", "baseline": finding_peaks[16],
        # Bounded, not flat: the duplicate check keeps a key per row in memory up to SPILL_KEYS rows
        # (1M, about 70 MiB), then spills to disk; a flat line would cost the <= 2x speed target.
        "ratio": finding_peaks[64] / finding_peaks[16], "target": "<= 150 MiB (keys spill to disk past 1M rows)",
        "ok": finding_peaks[64] <= 150,
    })

    small = workdir / "records-100k.csv"
    prefix(big, small, FRICTIONLESS_ROWS)
    fric = frictionless_seconds(small)
    if fric is not None:
        scaled = fric * ROWS / FRICTIONLESS_ROWS
        results.append({
            "name": f"frictionless validate (on {FRICTIONLESS_ROWS:,} rows, scaled x{ROWS // FRICTIONLESS_ROWS})",
            "value": scaled, "unit": "s", "baseline_name": "validate --offline", "baseline": validated["seconds"],
            "ratio": scaled / validated["seconds"], "target": ">= 10x slower than ours",
            "ok": scaled >= 10 * validated["seconds"],
        })
    else:
        print("  frictionless is not installed (pip install -r bench/requirements.txt): skipped", flush=True)
    small.unlink()

    # A 1 GB file: the 1M-row file repeated (same rows, realistic lines), then the first screen.
    huge = workdir / "records-1gb.csv"
    with open(big, "rb") as src:
        body = src.read()
    body = body[body.index(b"\n") + 1:]
    with open(huge, "wb") as out:
        out.write(HEADER.encode())
        while out.tell() < GIB:
            out.write(body)
    big.unlink()
    del body
    screen = best_of(3, "first-screen", huge)
    gib = huge.stat().st_size / GIB
    huge.unlink()
    results.append({
        "name": f"first screen (50 rows) of a {gib:.2f} GiB file", "value": screen["seconds"], "unit": "s",
        "baseline_name": None, "baseline": None, "ratio": None, "target": "< 0.3 s", "ok": screen["seconds"] < 0.3,
    })
    return results


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in run(Path(tmp)):
            print(row)
    os._exit(0)
