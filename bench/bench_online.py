"""`validate` against the LMS (issue 12): peak RSS must not grow with the learners of the file.

The reference LMS (tests/helpers/sandbox.py) holds every learner of the files, a tenth of them enrolled
in the course (a fifth of those complete, some with imported credit), so every look-up finds something.
Files of 8 and 32 MiB, one distinct learner per row (115k and 460k learners), each validated by the real
CLI in its own process (`importconsole validate FILE --course CARD-101 --json`), and `--offline` on the
same file as the baseline; peak RSS is the child's own VmHWM.

Targets: peak <= 150 MiB at both sizes; flat: what the LMS checks add to the offline peak at 32 MiB
within 1.2x of what they add at 8 MiB (offline validation itself grows up to its duplicate-key spill,
bench_validate). Time against offline is informational (the LMS answers most of it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from child_peak import PEAK_MIB

ROOT = Path(__file__).resolve().parent.parent
SIZES_MIB = (8, 32)
COURSE = "CARD-101"
HEAD = b"external_user_id,external_email,first_name,last_name,enrollment_start,complete,date_completed,credit_type,credits\n"

_CHILD = PEAK_MIB + r"""
import contextlib, json, sys, time
result, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
from importconsole.cli import main
start = time.perf_counter()
with open(out, "w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
    code = main(argv)
seconds = time.perf_counter() - start
open(result, "w").write(json.dumps({"code": code, "seconds": seconds, "rss_mib": _peak_mib()}))
"""


def _row(i: int) -> bytes:
    return b"U%07d,u%07d@example.org,Zoe,Last%d,2026-09-01,1,2026-10-01,ama,1.50\n" % (i, i, i)


def generate(path: Path, mib: int) -> int:
    rows = (mib << 20) // len(_row(0))
    with open(path, "wb") as fh:
        fh.write(HEAD)
        for start in range(0, rows, 10_000):
            fh.write(b"".join(_row(i) for i in range(start, min(rows, start + 10_000))))
    return rows


def lms_dataset(learners: int) -> dict:
    from helpers.sandbox import dataset

    return dataset(
        courses=[{"external_id": COURSE, "title": "Cardiology", "has_certificate": True, "required_objects": 3,
                  "credits": [{"credit_type": "ama", "min": 0.25, "max": 1.5, "increments": 0.25,
                               "enable_variable_credit": False}]}],
        users=[{"external_user_id": f"U{i:07d}", "email": f"u{i:07d}@example.org", "first_name": "Zoe",
                "last_name": f"Last{i}"} for i in range(learners)],
        enrollments=[{"external_user_id": f"U{i:07d}", "course_external_id": COURSE,
                      "status": "complete" if i % 50 == 0 else "incomplete",
                      **({"credits": [{"credit_type": "ama", "amount": 1.5}]} if i % 20 == 0 and i % 50 else {})}
                     for i in range(0, learners, 10)])


def child(ws, argv: list[str], token: str | None, workdir: Path) -> dict:
    result, out = workdir / "online.result.json", workdir / "online.out.json"
    done = subprocess.run([sys.executable, "-c", _CHILD, str(result), str(out), *argv], env=ws.env(token),
                          capture_output=True, text=True, cwd=workdir)
    figures = json.loads(result.read_text())
    assert figures["code"] in (0, 1), (figures, done.stderr[-2000:])
    figures["summary"] = json.loads(out.read_text())["summary"]
    result.unlink()
    out.unlink()
    return figures


def run(workdir: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "bench"))
    from adversarial import Workspace
    from helpers.sandbox import start_sandbox

    workdir = Path(workdir)
    files = {mib: workdir / f"online-{mib}mib.csv" for mib in SIZES_MIB}
    rows = {mib: generate(path, mib) for mib, path in files.items()}
    figures: dict[tuple[int, str], dict] = {}
    started = time.perf_counter()
    with start_sandbox(lms_dataset(max(rows.values()))) as lms:
        seeded = time.perf_counter() - started
        ws = Workspace(workdir / "online-ws", lms.base_url)
        for mib, path in files.items():
            figures[mib, "offline"] = child(ws, ["validate", "--offline", str(path), "--json"], None, workdir)
            figures[mib, "online"] = child(ws, ["validate", str(path), "--course", COURSE, "--json"], lms.admin_token,
                                           workdir)
            online = figures[mib, "online"]["summary"]
            # The LMS was asked: every 50th learner's enrollment is complete, and the row is refused.
            assert online["rows"] == rows[mib] and online["by_rule"].get("would-update-existing") == -(-rows[mib] // 50), online
    for path in files.values():
        path.unlink()
    print(f"  (reference LMS seeded with {max(rows.values()):,} learners in {seeded:.1f}s)", flush=True)
    return _rows(figures, rows)


def _rows(figures: dict, rows: dict) -> list[dict]:
    small, large = SIZES_MIB
    out = []
    for mib in SIZES_MIB:
        on, off = figures[mib, "online"], figures[mib, "offline"]
        out.append({"name": f"validate against the LMS, peak RSS, {mib} MiB ({rows[mib]:,} distinct learners)",
                    "value": on["rss_mib"], "unit": "MiB", "baseline_name": "validate --offline, same file",
                    "baseline": off["rss_mib"], "ratio": on["rss_mib"] / off["rss_mib"], "target": "<= 150 MiB",
                    "ok": on["rss_mib"] <= 150})
    added = {mib: figures[mib, "online"]["rss_mib"] - figures[mib, "offline"]["rss_mib"] for mib in SIZES_MIB}
    out.append({"name": f"what the LMS checks add to peak RSS (online - offline), {large} MiB", "value": added[large],
                "unit": "MiB", "baseline_name": f"the same at {small} MiB", "baseline": added[small],
                "ratio": added[large] / added[small], "target": "<= 1.2x (flat)",
                "ok": added[large] <= 1.2 * added[small]})
    for mib in SIZES_MIB:
        on, off = figures[mib, "online"], figures[mib, "offline"]
        out.append({"name": f"validate against the LMS, {mib} MiB (informational)", "value": on["seconds"], "unit": "s",
                    "baseline_name": "validate --offline, same file", "baseline": off["seconds"],
                    "ratio": on["seconds"] / off["seconds"], "target": "", "ok": True})
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in run(Path(tmp)):
            print(row)
