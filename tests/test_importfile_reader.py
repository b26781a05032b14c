"""Reading big files: streaming with flat memory, the first screen at once, row N by the index,
progress and cancel while validating (RELIABILITY.md case 25, the preview's needs)."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from importconsole.importfile.index import RowIndex
from importconsole.importfile.reader import open_import_file
from importconsole.importfile.validate import validate

HEADER = b"external_user_id,external_email,first_name,complete,date_completed\r\n"


def big_file(path: Path, rows: int) -> Path:
    block = b"".join(b"u%07d,l%07d@example.org,Zo\xc3\xab,1,2026-03-04\r\n" % (n, n) for n in range(10_000))
    with open(path, "wb") as fh:
        fh.write(HEADER)
        for start in range(0, rows, 10_000):
            # Distinct ids per block so the file is realistic (no duplicates).
            fh.write(block.replace(b"u00", b"v%02d" % (start // 10_000 % 100), 10_000) if start else block)
    return path


@pytest.fixture(scope="module")
def hundred_k(tmp_path_factory) -> Path:
    return big_file(tmp_path_factory.mktemp("big") / "big.csv", 100_000)


def test_records_stream_with_flat_memory(hundred_k):
    opened = open_import_file(hundred_k)
    tracemalloc.start()
    count = sum(1 for _ in opened.records())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 100_000
    assert peak < 2 * 1024 * 1024, f"reading held {peak} bytes"  # a few records at a time, not the file


def test_first_screen_comes_before_the_index_is_built_and_row_n_is_right(hundred_k):
    started = time.perf_counter()
    index = RowIndex(open_import_file(hundred_k))
    screen = index.records(1, 40)
    assert time.perf_counter() - started < 0.3
    assert [r.row for r in screen] == list(range(1, 41)) and screen[0].line == 2
    index.start()
    assert index.wait(30) and index.count == 100_000
    for n in (1, 64, 65, 4097, 77_777, 100_000):
        record = index.record(n)
        assert (record.row, record.line) == (n, n + 1)
    expected = next(r for r in open_import_file(hundred_k).records() if r.row == 77_777)
    assert index.record(77_777).cells == expected.cells
    with pytest.raises(IndexError):
        index.record(100_001)


def test_index_build_can_be_cancelled(hundred_k):
    index = RowIndex(open_import_file(hundred_k))
    cancel = threading.Event()
    cancel.set()
    index.build(cancel=cancel)
    assert not index.done and index.count < 100_000


def test_index_lines_after_quoted_line_breaks(tmp_path):
    path = tmp_path / "q.csv"
    body = b"".join(b'l%d@example.org,"two\r\nlines",1,2026-01-01\r\n' % n for n in range(300))
    path.write_bytes(b"external_email,first_name,complete,date_completed\r\n" + body)
    index = RowIndex(open_import_file(path))
    index.build()
    assert index.count == 300
    assert [(index.record(n).row, index.record(n).line) for n in (1, 65, 300)] == [(1, 2), (65, 130), (300, 600)]


def test_validate_reports_progress_and_stops_when_cancelled(hundred_k):
    seen: list[tuple[int, int]] = []
    report = validate(hundred_k, progress=lambda done, total: seen.append((done, total)))
    assert report.rows == 100_000 and report.errors == 0 and not report.cancelled
    assert seen and seen[-1][0] <= seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    cancel = threading.Event()
    cancel.set()
    stopped = validate(hundred_k, cancel=cancel)
    assert stopped.cancelled and stopped.rows < 100_000 and not stopped.ok


def test_a_clean_file_takes_the_fast_path_and_is_read_whole(tmp_path):
    from importconsole.importfile.scan import scan

    path = big_file(tmp_path / "f.csv", 20_000)
    chunks = list(scan(open_import_file(path), chunk_chars=64 * 1024))
    assert len(chunks) > 5 and all(c.clean and c.uniform for c in chunks)
    assert sum(c.count for c in chunks) == 20_000
    report = validate(path)
    assert report.rows == 20_000 and report.findings == [] and report.line_endings == "CRLF"


def test_past_the_spill_point_duplicates_are_still_found_and_memory_stays_flat(tmp_path, monkeypatch):
    import importconsole.importfile.validate as validation
    import importconsole.importfile.validate.duplicates as duplicates

    monkeypatch.setattr(duplicates, "SPILL_KEYS", 2_000)  # a 1 GB file's behaviour on 30k rows
    path = big_file(tmp_path / "f.csv", 30_000)
    with open(path, "ab") as fh:
        fh.write(b"u0000005,l0000005@example.org,Zo\xc3\xab,1,2026-03-04\r\n")  # row 30001 repeats row 6
    tracemalloc.start()
    report = validation.validate(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(f.rule, f.row, f.message) for f in report.findings] == [
        ("duplicate-row", 30_001, "identical to row 6: it would be imported twice")]
    assert peak < 32 * 1024 * 1024, f"validation held {peak} bytes"  # one part's cells at a time


def test_index_of_a_file_with_mixed_line_endings(tmp_path):
    path = tmp_path / "m.csv"
    lines = [b"l%d@example.org,Ann,1" % n for n in range(200)]
    endings = [b"\r\n", b"\n", b"\r"]
    path.write_bytes(b"external_email,first_name,complete\r\n" + b"".join(l + endings[n % 3] for n, l in enumerate(lines)))
    index = RowIndex(open_import_file(path))
    index.build()
    expected = list(open_import_file(path).records())
    assert index.count == len(expected) == 200
    for n in (1, 2, 3, 64, 65, 66, 200):
        assert (index.record(n).line, index.record(n).cells) == (expected[n - 1].line, expected[n - 1].cells)
