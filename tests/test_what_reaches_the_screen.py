"""What reaches the screen and the LMS (issue 12, item 6): JSON output escapes bidi and other
invisible characters; a config error never echoes a value that could be a secret; fix --sanitize
and the re-import remove a terminal escape sequence whole, and the manifest says so."""

from __future__ import annotations

import asyncio
import csv
import json
import time
import sqlite3

from helpers.profiles import cli_env
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import assert_each_learner_imported_once, count, course_file, learners, submit

from importconsole.cli import main

RLO = "\u202e"
INVISIBLE = [RLO, "\u2066", "\u200b", "\u00ad", "\x85", "\x7f"]


def _no_raw_invisibles(text: str) -> None:
    found = [f"U+{ord(c):04X}" for c in INVISIBLE if c in text]
    assert not found, f"printed raw: {found}"


def test_validate_json_escapes_bidi_and_invisible_characters(tmp_path, capsys):
    path = tmp_path / f"records{RLO}vsc.csv"
    header = "external_email,first" + RLO + "name"
    path.write_bytes((header + "\na@example.org,Ann\u2066\u200b\u00ad\x85\x7f\n").encode())
    assert main(["validate", str(path), "--offline", "--json"]) == 1
    out = capsys.readouterr().out
    _no_raw_invisibles(out)
    assert "\\u202e" in out
    doc = json.loads(out)  # still the same JSON values
    assert doc["file"] == str(path)


def test_watch_json_escapes_a_bidi_file_name_from_the_lms(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        item = asyncio.run(submit(lms, course_file(3), course="C-FIXED"))
        lms.wait_import(item["id"])
        name = f"grades{RLO}vsc.csv"
        with sqlite3.connect(str(lms.db_path), timeout=10) as db:
            db.execute("UPDATE imports SET file_name = ? WHERE id = ?", (name, item["id"]))
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["watch", str(item["id"]), "--json"]) == 0
        out = capsys.readouterr().out
        _no_raw_invisibles(out)
        assert "\\u202e" in out
        assert json.loads(out.strip().splitlines()[-1])["file_name"] == name


SECRET = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def test_a_token_pasted_into_base_url_is_refused_and_never_echoed(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.p]\nbase_url = "https://lms.example.org/?access_token={SECRET}"\nusername = "u"\n'
                      f'poll_interval = "{SECRET}"\nimporter = "{SECRET}"\n')
    assert main(["config", "validate", "--config", str(config)]) == 1
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert SECRET not in text
    assert "profiles.p.base_url: has a query string" in text and "refused" in text
    assert "profiles.p.poll_interval" in text and "profiles.p.importer" in text and "not shown" in text
    config.write_text(f'[profiles.p]\nbase_url = "{SECRET}"\nusername = "u"\n')
    assert main(["config", "validate", "--config", str(config)]) == 1
    text = "".join(capsys.readouterr())
    assert SECRET not in text and "profiles.p.base_url: must start with https://" in text


def test_fix_sanitize_removes_an_escape_sequence_whole_and_the_manifest_says_so(tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_bytes(b"external_email,first_name,last_name\n"
                     b"a@example.org,\x1b[2J\x1b[HA,Smith\x1b]0;owned\x07\n")
    out = tmp_path / "out.csv"
    assert main(["fix", str(path), "--out", str(out), "--sanitize"]) == 0
    assert out.read_bytes().splitlines()[1] == b"a@example.org,A,Smith"
    rows = list(csv.reader((tmp_path / "out.csv.manifest.csv").open(encoding="utf-8")))
    said = {r[2]: r[6] for r in rows[1:]}
    assert "escape sequences <U+001B>[2J, <U+001B>[H removed whole" in said["first_name"]
    assert "escape sequence <U+001B>]0;owned<U+0007> removed whole" in said["last_name"]


def test_the_reimport_removes_an_escape_sequence_whole(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(10)), rows_per_second=1000) as lms:
        item = asyncio.run(submit(lms, course_file(10, bad_row=4, char="\x1b[2J\x1b[H"), course="C-FIXED"))
        lms.wait_rows(item["id"], 3)
        time.sleep(1.1)  # unlock takes only a hung import: hung_after is 1 s here
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["recover", str(item["id"]), "--yes"]) == 0
        out = capsys.readouterr().out
        assert "row 4, external_user_id" in out and "removed whole" in out, out
        lms.wait_import(count(lms, "SELECT max(id) FROM imports"))
        # u4 itself was imported, not a learner called "u4[2J[H" left waiting for an account.
        assert_each_learner_imported_once(lms, 10)
        assert count(lms, "SELECT count(*) FROM held_rows") == 0
