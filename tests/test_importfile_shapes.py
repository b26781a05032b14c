"""The two file shapes docs/performance.md measures beside the usual export (issue 11, item 8):
a file with every value quoted (read by scan's quoted fast path, never the csv module) and a file
where learners have several rows (the duplicate pass, on disk past DUPLICATE_KEYS_IN_MEMORY).
Both must give exactly what the general paths give."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import importconsole.importfile.scan as scan_module
import importconsole.importfile.validate as validation
import importconsole.importfile.validate.duplicates as duplicates
from importconsole.importfile.reader import open_import_file
from importconsole.importfile.scan import scan

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEADER = ["external_user_id", "external_email", "first_name", "external_course_id", "complete", "credit_type"]
CELL = st.lists(st.sampled_from(list("ab ,;\"'\n\r\t=-é王\u200b\u00a0") + ["e\u0301", "u1", "X@Y.org"]),
                max_size=4).map("".join)


def _csv(rows, *, quoting, delim=",", ending="\r\n", header=HEADER) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delim, lineterminator=ending, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _file(content: bytes, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="importfile-shapes-")) / name
    path.write_bytes(content)
    return path


def _findings(report) -> list[dict]:
    return [f.as_dict() for f in report.findings]


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=6, max_size=6), min_size=1, max_size=25),
       delim=st.sampled_from([",", ";", "\t"]), ending=st.sampled_from(["\r\n", "\n"]),
       chunk=st.integers(min_value=5, max_value=400))
def test_a_file_with_every_value_quoted_reads_and_validates_as_the_csv_module_reads_it(rows, delim, ending, chunk):
    quoted = _file(_csv(rows, quoting=csv.QUOTE_ALL, delim=delim, ending=ending), "quoted.csv")
    records = list(open_import_file(quoted).records())
    scanned = []
    for part in scan(open_import_file(quoted), chunk_chars=chunk):
        scanned += [(part.first_row + i, part.line_of(i), cells) for i, cells in enumerate(part.rows)]
    assert scanned == [(r.row, r.line, r.cells) for r in records]
    fast = validation.validate(quoted)
    real = scan_module._parse_all_quoted
    scan_module._parse_all_quoted = lambda *args: None  # every part through the csv module, as before
    try:
        general = validation.validate(quoted)
    finally:
        scan_module._parse_all_quoted = real
    assert _findings(fast) == _findings(general) and fast.counts == general.counts
    assert (fast.rows, fast.blank_rows, fast.notes, fast.line_endings) == (
        general.rows, general.blank_rows, general.notes, general.line_endings)


def test_a_quoted_export_takes_the_fast_path_and_finds_what_the_csv_module_finds(tmp_path):
    rows = [["u1", "a@x.org", "=SUM(A1)", "C1", "1", "ama"], ["u2", " b@x.org", "Zoe\u0301", "C1", "1", ""],
            ["u1", "a@x.org", "=SUM(A1)", "C1", "1", "ama"]]
    path = tmp_path / "q.csv"
    path.write_bytes(_csv(rows, quoting=csv.QUOTE_ALL))
    (part,) = list(scan(open_import_file(path)))
    assert part.uniform and not part.clean  # split whole, without the csv module's per-record path
    report = validation.validate(path)
    found = sorted((f.rule, f.row) for f in report.findings if f.rule != "completion-date-missing")
    assert found == [("duplicate-credit-row", 3), ("duplicate-row", 3), ("formula-like", 1), ("formula-like", 3),
                     ("id-whitespace", 2), ("unicode-normalisation", 2)]


def _learners(count: int) -> bytes:
    """Every learner on an enrollment row, then a completion row later; some rows that the
    duplicate rules report: identical rows, a second credit row, a row completed earlier, the same
    id with another email, and an email written differently."""
    head = ["external_user_id", "external_email", "first_name", "external_course_id", "complete",
            "date_completed", "credit_type", "credits"]
    rows = [[f"u{i}", f"l{i}@example.org", "Ann", f"C{i % 7}", "0", "", "", ""] for i in range(count)]
    for i in range(count):
        rows.append([f"u{i}", f"l{i}@example.org", "Ann", f"C{i % 7}", "1", "2026-03-04", "", ""])
        if i % 9 == 0:
            rows.append(list(rows[i]))  # the enrollment row again
        if i % 11 == 0:
            rows.append([f"u{i}", f"L{i}@Example.org", "Ann", f"C{i % 7} ", "1", "2026-03-04", "", "1"])
        if i % 13 == 0:
            rows.append([f"u{i}", f"other{i}@example.org", "Ann", f"C{i % 7}", "0", "", "", "2"])
    return _csv(rows, quoting=csv.QUOTE_MINIMAL, header=head)


def test_the_duplicate_pass_on_disk_gives_the_same_findings_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "learners.csv"
    path.write_bytes(_learners(400))
    in_memory = validation.validate(path)
    rules = {f.rule for f in in_memory.findings}
    assert {"duplicate-row", "duplicate-credit-row", "completed-earlier-in-file"} <= rules
    assert any("another email" in f.message for f in in_memory.findings)
    assert any("written differently" in f.message for f in in_memory.findings)

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(duplicates, "DUPLICATE_KEYS_IN_MEMORY", 7)  # 400 repeated keys: 58 shares on disk
    spills = []
    real = duplicates.SpilledRepeats

    def recorded(keys, in_memory_keys):
        spill = real(keys, in_memory_keys)
        spills.append((spill.path, spill.shares))
        return spill

    monkeypatch.setattr(duplicates, "SpilledRepeats", recorded)
    on_disk = validation.validate(path)
    assert [(p.parent, shares) for p, shares in spills] == [(temp, 58)]
    assert _findings(on_disk) == _findings(in_memory) and on_disk.counts == in_memory.counts
    assert list(temp.iterdir()) == []


def test_the_duplicate_pass_removes_its_temporary_files_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "learners.csv"
    path.write_bytes(_learners(50))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(duplicates, "DUPLICATE_KEYS_IN_MEMORY", 7)

    def fail(self, row):
        assert list(temp.iterdir()), "the rows should be on disk by now"
        raise OSError("disk full")

    monkeypatch.setattr(duplicates._Replay, "take", fail)
    with pytest.raises(OSError):
        validation.validate(path)
    assert list(temp.iterdir()) == []


def test_line_ends_are_counted_once_when_the_file_has_duplicates(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"external_email,first_name,complete\r\na@x.org,A,1\nb@x.org,B,1\r\na@x.org,A,1\r\n")
    report = validation.validate(path)
    assert [f.row for f in report.of("duplicate-row")] == [3]
    (mixed,) = report.of("mixed-line-endings")
    assert mixed.message == "the file mixes line endings (CRLF 2, LF 1)"


def test_progress_comes_about_once_a_mib_though_parts_are_smaller(tmp_path):
    from test_importfile_reader import big_file

    path = big_file(tmp_path / "f.csv", 60_000)  # about 2.8 MiB
    parts = len(list(scan(open_import_file(path))))
    seen: list[tuple[int, int]] = []
    report = validation.validate(path, progress=lambda done, total: seen.append((done, total)))
    assert report.rows == 60_000 and parts >= 8
    assert 2 <= len(seen) <= 3 and seen[-1][0] == sum(len(p.text) for p in scan(open_import_file(path)))
