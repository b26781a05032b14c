"""A file where every row has a finding: the report keeps at most MAX_FINDINGS_PER_RULE of a rule's
findings (the first ones, in file order) and counts every one (issue 12: memory flat in findings)."""

from __future__ import annotations

from importconsole.importfile.validate import MAX_FINDINGS_PER_RULE, validate

HEADER = b"external_user_id,first_name,last_name,enrollment_start,complete,date_completed,credit_type,credits\n"


def test_findings_kept_are_capped_and_all_are_counted(tmp_path):
    rows = MAX_FINDINGS_PER_RULE + 500
    path = tmp_path / "every-row-nbsp.csv"
    path.write_bytes(HEADER + b"".join(b"U%07d,Zo\xc3\xab\xc2\xa0,Last%d,2026-09-01,1,2026-10-01,,\n" % (i, i)
                                       for i in range(rows)))
    before = path.read_bytes()
    report = validate(path)
    shown = report.as_dict()
    assert shown["summary"]["by_rule"] == {"special-characters": rows}
    assert shown["summary"]["findings_shown"] == MAX_FINDINGS_PER_RULE
    kept = [f for f in shown["findings"] if f["rule"] == "special-characters"]
    assert len(kept) == MAX_FINDINGS_PER_RULE
    assert [f["row"] for f in kept] == list(range(1, MAX_FINDINGS_PER_RULE + 1))  # the first ones, in order
    assert all("U+00A0" in f["message"] or "NO-BREAK" in f["message"].upper() for f in kept), kept[0]
    assert path.read_bytes() == before
