"""Defects found using the EthosCE path as a first-time admin would, on the real kit (tests/feeds_kit.py):
each test reproduces what the admin saw and asserts what is true on the site."""

from __future__ import annotations

from importconsole.cli import main
from test_ethosce_cli import IMPORTER, colleague_hangs_the_importer, kit_cli, locked  # noqa: F401 (fixture)


def test_recover_shows_its_plan_one_line_at_a_time_before_asking(kit_cli, tmp_path, capsys):
    path = kit_cli.make_csv(tmp_path / "bad.csv", 50, "--bad-row", "23", "--bad", "zwsp")
    assert colleague_hangs_the_importer(kit_cli, path) == 500
    assert main(["recover", IMPORTER, "--file", str(path)]) == 1  # no terminal: not confirmed
    out = capsys.readouterr().out
    assert "<U+000A>" not in out
    lines = out.splitlines()
    assert lines[0] == f"Importer {IMPORTER}: Importing (42 %) (42 % of the file's bytes)"
    assert "2. Re-import rows 23-50 (28 rows), sanitized" in lines
    assert locked(kit_cli) and kit_cli.scalar("SELECT COUNT(*) FROM courserecord_transcript_import") == 22
