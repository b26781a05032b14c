"""`make bench`: every benchmark of the project, each reported as a ratio against a baseline
measured in the same run, then written to docs/performance.md (between the markers)."""

from __future__ import annotations

import importlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

# Each module has run(workdir: Path) -> list[dict]; a dict is one figure:
#   {"name", "value", "unit", "baseline_name", "baseline", "ratio", "target", "ok"}
BENCHES = ["bench_server", "bench_validate", "bench_tui", "bench_fix", "bench_ethosce", "bench_award", "bench_online"]


def main() -> int:
    only = sys.argv[1:]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="importconsole-bench-") as tmp:
        for name in BENCHES:
            if only and name not in only:
                continue
            if not (ROOT / f"{name}.py").exists():
                print(f"[{name}] not written yet", flush=True)
                continue
            print(f"[{name}] running...", flush=True)
            started = time.perf_counter()
            rows = importlib.import_module(name).run(Path(tmp))
            for row in rows:
                row.setdefault("bench", name)
                print("  " + _line(row), flush=True)
            print(f"[{name}] {time.perf_counter() - started:.1f}s", flush=True)
            results.extend(rows)
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _write_report(results)
    return 0 if all(r.get("ok", True) for r in results) else 1


def _line(row: dict) -> str:
    text = f"{row['name']}: {row['value']:.4g} {row['unit']}"
    if row.get("ratio") is not None:
        text += f"  ({row['ratio']:.2f}x {row['baseline_name']} = {row['baseline']:.4g} {row['unit']})"
    if row.get("target"):
        text += f"  target {row['target']}: {'met' if row.get('ok') else 'MISSED'}"
    return text


def _table_rows(text: str, start: str, end: str) -> list[str]:
    if start not in text or end not in text:
        return []
    inside = text.split(start, 1)[1].split(end, 1)[0]
    return [line for line in inside.splitlines()
            if line.startswith("| bench_") and line.count("|") >= 8]


def _write_report(results: list[dict]) -> None:
    doc = ROOT.parent / "docs" / "performance.md"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    table = [
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {_cores()} cores.",
        "",
        "| bench | figure | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    ran = {r["bench"] for r in results}
    text = doc.read_text() if doc.exists() else "# Performance\n\n" + start + "\n" + end + "\n"
    # `run.py NAME` measures one bench: the other benches' rows of the last full run stay in the table.
    kept = [line for line in _table_rows(text, start, end) if line.split("|")[1].strip() not in ran]
    if kept:
        table[0] += " Only " + ", ".join(sorted(ran)) + " ran that day; the other rows are from an earlier run."
    table.extend(kept)
    for r in results:
        base = f"{r['baseline_name']}: {r['baseline']:.4g} {r['unit']}" if r.get("baseline_name") else ""
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else ""
        table.append(
            f"| {r['bench']} | {r['name']} | {r['value']:.4g} {r['unit']} | {base} | {ratio} | "
            f"{r.get('target', '')} | {'yes' if r.get('ok', True) else 'NO'} |"
        )
    body = "\n".join(table)
    if start not in text:
        text += "\n" + start + "\n" + end + "\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + start + "\n" + body + "\n" + end + tail)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
