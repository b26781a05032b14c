"""`importconsole validate` and `importconsole fix` as an admin runs them: exit codes, the lines
they print, the JSON document, and the LMS checks through a profile against the reference LMS."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from importconsole.cli import main
from importconsole.importfile.catalogue import RULES, rules_markdown
from importconsole.importfile.validate import validate
from helpers.profiles import profile_env
from helpers.sandbox import dataset, start_sandbox

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "cli-validate-token"
LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+|-):(?P<col>\d+|-) \[(?P<sev>error|warning|info) (?P<rule>[a-z0-9-]+)\]"
                  r"(?: row (?P<row>\d+))?(?: column (?P<column>.+?))?: (?P<msg>.+) -- (?P<fix>.+)$")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "importconsole", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_clean_file_exits_0_and_says_what_was_not_checked(tmp_path, capsys):
    path = tmp_path / "ok.csv"
    path.write_bytes(b"external_email,complete,date_completed\r\na@example.org,1,2026-03-01\r\n")
    assert main(["validate", str(path), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "1 row; 0 errors, 0 warnings" in out and "CRLF" in out and "1 rows" not in out
    assert "Not checked" in out and "partial-credit-not-variable" in out


def test_findings_are_one_line_each_with_file_line_column_rule_row_and_fix(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"external_email,first_name,complete\na@example.org,Ann,1\nb@example.org,Bo\xe2\x80\x8b,7\n")
    assert main(["validate", str(path), "--offline"]) == 1
    lines = [LINE.match(line) for line in capsys.readouterr().out.splitlines()]
    found = {(m["rule"], m["line"], m["col"], m["row"], m["column"]) for m in lines if m}
    assert ("special-characters", "3", "2", "2", "first_name") in found
    assert ("bad-complete", "3", "3", "2", "complete") in found
    assert "\u200b" not in "".join(m["msg"] for m in lines if m)  # shown as <U+200B>, never raw


def test_warnings_alone_exit_0(tmp_path, capsys):
    path = tmp_path / "warn.csv"
    path.write_bytes(b"external_email,complete\na@example.org,1\n")  # completion-date-missing
    assert main(["validate", str(path), "--offline"]) == 0
    assert "completion-date-missing" in capsys.readouterr().out


def test_unreadable_file_exits_2_with_a_sentence_and_no_traceback(tmp_path):
    path = tmp_path / "book.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    result = run("validate", str(path), "--offline")
    assert result.returncode == 2
    assert "Excel workbook" in result.stderr and "CSV UTF-8" in result.stderr and "Traceback" not in result.stderr
    result = run("validate", str(path), "--offline", "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["error"]["offset"] == 0


def test_json_document_follows_the_documented_schema(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes("\ufeffexternal_email,credit_type,credits\na@example.org,ama,\"1,5\"\n".encode())
    assert main(["validate", str(path), "--offline", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"file", "encoding", "delimiter", "rows", "findings", "summary", "not_checked"}
    assert doc["encoding"] == "UTF-8 with BOM" and doc["delimiter"] == "," and doc["rows"] == 1
    (bad,) = [f for f in doc["findings"] if f["rule"] == "bad-number"]
    assert (bad["row"], bad["line"], bad["column"], bad["value"], bad["severity"]) == (1, 2, "credits", "1,5", "error")
    assert set(bad) == {"rule", "severity", "row", "line", "column", "column_number", "value", "message", "fix"}
    assert doc["summary"]["errors"] == 1 and "would-update-existing" in doc["not_checked"]
    documented = (ROOT / "docs" / "validate-json.md").read_text()
    for key in [*doc, *doc["summary"], *bad]:
        assert f"`{key}`" in documented or f'"{key}"' in documented, key


def test_without_offline_or_a_profile_it_says_lms_checks_need_one(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(b"external_email,complete\na@example.org,0\n")
    result = run("validate", str(path), env={"IMPORTCONSOLE_CONFIG": str(tmp_path / "none.toml")})
    assert result.returncode == 2
    assert "profile" in result.stderr and "--offline" in result.stderr and "Traceback" not in result.stderr


def test_validate_with_a_profile_checks_the_lms_rules(tmp_path):
    tokens = [{"token": TOKEN, "username": "jdoe", "role": "site_admin", "display_name": "J. Doe"}]
    with start_sandbox(dataset(tokens=tokens), rows_per_second=None) as lms:
        path = tmp_path / "partial.csv"
        path.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\nu2,1,2026-03-01,ama,0.5\n")
        env = {**profile_env(tmp_path, lms, username="jdoe", token=TOKEN, state=tmp_path),
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        result = run("validate", str(path), "--course", "C-FIXED", "--json", env=env)
        assert result.returncode == 1, result.stderr
        doc = json.loads(result.stdout)
        assert doc["online"] and doc["not_checked"] == []
        assert [f["row"] for f in doc["findings"] if f["rule"] == "partial-credit-not-variable"] == [1]
        assert TOKEN not in result.stdout + result.stderr


def test_fix_writes_a_new_file_and_a_manifest_and_never_overwrites_the_input(tmp_path, capsys):
    path = tmp_path / "in.csv"
    original = "external_email, first_name ,credit_type,credits\na@example.org,An\u200bn,ama;ancc,1\nb@example.org,=1+1,ama,1\n"
    path.write_bytes(original.encode())
    assert main(["fix", str(path), "--out", str(path), "--sanitize"]) == 2
    assert "input file" in capsys.readouterr().err
    out = tmp_path / "out.csv"
    assert main(["fix", str(path), "--out", str(out), "--sanitize", "--split-credit-types"]) == 0
    assert path.read_bytes() == original.encode()  # the given file is never edited
    text = out.read_text()
    assert text.splitlines() == ["external_email,first_name,credit_type,credits", "a@example.org,Ann,ama,1",
                                 "a@example.org,Ann,ancc,1", "b@example.org,=1+1,ama,1"]  # formula kept as it is
    manifest = (tmp_path / "out.csv.manifest.csv").read_text()
    assert "<U+200B>" in manifest and "split into 2 rows" in manifest and "first_name" in manifest
    assert stat.S_IMODE(os.stat(tmp_path / "out.csv.manifest.csv").st_mode) == 0o600
    assert validate(out).errors == 0
    assert main(["fix", str(path), "--out", str(out), "--sanitize"]) == 2  # nor any existing file
    assert "already exists" in capsys.readouterr().err and out.read_text() == text


def test_fix_rows_keeps_only_the_rows_asked_for(tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_bytes(b"external_email,complete\n" + b"".join(b"l%d@example.org,0\n" % n for n in range(1, 11)))
    out = tmp_path / "part.csv"
    assert main(["fix", str(path), "--out", str(out), "--rows", "2-3,9-"]) == 0
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == [
        "l2@example.org", "l3@example.org", "l9@example.org", "l10@example.org"]
    assert main(["fix", str(path), "--out", str(tmp_path / "other.csv"), "--rows", "x-3"]) == 2
    assert "not a row" in capsys.readouterr().err


def test_manifest_escapes_formula_like_cells(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("external_email,first_name\na@example.org,=cmd\u200b\n".encode())
    out = tmp_path / "out.csv"
    assert main(["fix", str(path), "--out", str(out), "--sanitize"]) == 0
    manifest = (tmp_path / "out.csv.manifest.csv").read_text()
    assert "'=cmd" in manifest and ",=cmd" not in manifest
    assert out.read_text().splitlines()[1] == "a@example.org,=cmd"


def test_rules_doc_is_generated_from_the_catalogue():
    assert (ROOT / "docs" / "rules.md").read_text() == rules_markdown(), \
        "docs/rules.md is stale: python -m importconsole.importfile.catalogue > docs/rules.md"
    domain = (Path("/work/shared/DOMAIN.md").read_text() if Path("/work/shared/DOMAIN.md").exists() else "")
    for rule_id in re.findall(r"^\| `([a-z-]+)` \| (?:error|warning)", domain, re.M):
        assert rule_id in RULES and RULES[rule_id].domain


@pytest.mark.parametrize("flag", ["--completion-only"])
def test_completion_only_refuses_offline(tmp_path, capsys, flag):
    path = tmp_path / "in.csv"
    path.write_bytes(b"external_email,complete\na@example.org,1\n")
    assert main(["fix", str(path), "--out", str(tmp_path / "o.csv"), flag, "--offline"]) == 2
    assert "needs the LMS" in capsys.readouterr().err


def test_completion_only_without_the_course_leaves_credit_and_says_why(tmp_path):
    from importconsole.importfile.facts import OfflineFacts
    from importconsole.importfile.fixes import write_fixed_file

    class Online(OfflineFacts):
        online = True

    path = tmp_path / "in.csv"
    path.write_bytes(b"external_email,complete,credit_type,credits\na@example.org,1,ama,1\n")
    manifest = write_fixed_file(path, tmp_path / "o.csv", completion_only=True, facts=Online())
    assert manifest.completion_only_rows == [] and "--course" in manifest.notes[0]
    assert (tmp_path / "o.csv").read_bytes() == path.read_bytes()
    assert "--course" in (tmp_path / "o.csv.manifest.csv").read_text()
