"""What asking importfile.award on every row costs (issue 10): validate with LMS facts (in memory,
no network) against validate --offline of the same file, and fix --completion-only (a first pass
over the file, then every row weighed against the learner's file credit) against fix --sanitize.
Run alone: `.venv/bin/python bench/bench_award.py` (or add "bench_award" to run.py's BENCHES)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from importconsole.importfile.facts import (  # noqa: E402
    CourseCreditFact, CourseFact, CreditTypeFact, OfflineFacts, UserFact, UserKey,
)
from importconsole.importfile.fixes import write_fixed_file  # noqa: E402
from importconsole.importfile.validate import validate  # noqa: E402

ROWS = 200_000


class MemoryFacts:
    """Every user exists, one course with non-variable ama (1.5): half the rows say 0.75 (they
    differ from the award and are left as they are), half say 1.5 (made completion-only)."""

    online = True

    def credit_types(self):
        return {"ama": CreditTypeFact("ama", "AMA", ("pars",))}

    def courses(self, ids):
        return {c: CourseFact(c, c, True, 2, {"ama": CourseCreditFact(0.25, 1.5, 0.25, False)}) for c in ids}

    def users(self, ids, emails):
        return {UserKey(external_user_id=i): UserFact(1, i) for i in ids}

    def enrollments(self, keys):
        return {k: None for k in keys}


def _best(n, job) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return min(times)


def run(workdir: Path) -> list[dict]:
    src = workdir / "award.csv"
    with open(src, "w", encoding="utf-8") as fh:
        fh.write("external_user_id,complete,date_completed,credit_type,credits\n")
        for n in range(ROWS):
            fh.write(f"u{n},1,2026-01-02,ama,{'1.5' if n % 2 else '0.75'}\n")
    offline = _best(3, lambda: validate(src, course_external_id="C", facts=OfflineFacts()))
    online = _best(3, lambda: validate(src, course_external_id="C", facts=MemoryFacts()))
    outs = iter(range(100))
    sanitize = _best(3, lambda: write_fixed_file(src, workdir / f"s{next(outs)}.csv", sanitize=True))
    completion = _best(3, lambda: write_fixed_file(src, workdir / f"c{next(outs)}.csv", completion_only=True,
                                                   facts=MemoryFacts(), course_external_id="C"))
    return [
        {"name": f"validate with LMS facts in memory, {ROWS:,} rows (informational)", "value": online, "unit": "s",
         "baseline_name": "validate --offline", "baseline": offline, "ratio": online / offline},
        {"name": f"fix --completion-only, {ROWS:,} rows, half left as they are (informational)", "value": completion,
         "unit": "s", "baseline_name": "fix --sanitize", "baseline": sanitize, "ratio": completion / sanitize},
    ]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="importconsole-bench-") as tmp:
        for row in run(Path(tmp)):
            print(f"{row['name']}: {row['value']:.3f} s ({row['ratio']:.2f}x {row['baseline_name']} = "
                  f"{row['baseline']:.3f} s)")
