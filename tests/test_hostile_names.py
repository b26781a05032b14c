"""A file name the LMS reports is the uploader's data, never a path: `..`, `x/../..` or a name
longer than any file system allows must not stop diagnose, unlock or the re-import (issue 12,
item 2). The hostile name is written into the reference LMS's own database, so the test does not
depend on what the server accepts at upload."""

import asyncio
import json
import sqlite3

import pytest

from helpers.profiles import cli_env
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import assert_each_learner_imported_once, count, course_file, learners, submit

from importconsole.cli import main

HOSTILE = ["..", "x/../..", "n" * 300 + ".csv"]


async def _hung_import(lms, rows: int, bad_row: int) -> dict:
    item = await submit(lms, course_file(rows, bad_row=bad_row), course="C-FIXED")
    await asyncio.to_thread(lms.wait_rows, item["id"], bad_row - 1)
    await asyncio.sleep(1.1)  # unlock takes only a hung import: hung_after is 1 s here
    return item


def _rename_on_the_lms(lms, import_id: int, name: str) -> None:
    with sqlite3.connect(str(lms.db_path), timeout=10) as db:
        db.execute("UPDATE imports SET file_name = ? WHERE id = ?", (name, import_id))
    assert lms.get_import(import_id)["file_name"] == name


@pytest.mark.parametrize("name", HOSTILE, ids=["dotdot", "traversal", "over-255-bytes"])
def test_diagnose_unlock_and_reimport_work_whatever_the_lms_calls_the_file(monkeypatch, tmp_path, capsys, name):
    with start_sandbox(dataset(users=learners(12)), rows_per_second=1000) as lms:
        item = asyncio.run(_hung_import(lms, rows=12, bad_row=5))
        _rename_on_the_lms(lms, item["id"], name)
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["diagnose", str(item["id"])]) == 0
        shown = capsys.readouterr()
        assert "Next row to process: row 5" in shown.out and "U+200B" in shown.out, shown
        assert main(["unlock", str(item["id"]), "--yes"]) == 0
        shown = capsys.readouterr()
        assert f"unlocked import {item['id']}" in shown.out, shown
        assert main(["reimport", str(item["id"]), "--yes", "--json"]) == 0
        outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        reimport = lms.wait_import(outcome["outcome"]["reimport_id"])
        assert reimport["state"] == "completed" and "/" not in reimport["file_name"]
        assert_each_learner_imported_once(lms, 12)
        assert count(lms, "SELECT count(*) FROM imports") == 2


def test_recover_in_one_step_with_a_traversal_name(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(12)), rows_per_second=1000) as lms:
        item = asyncio.run(_hung_import(lms, rows=12, bad_row=7))
        _rename_on_the_lms(lms, item["id"], "../../etc/x/../..")
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["recover", str(item["id"]), "--yes"]) == 0
        out = capsys.readouterr().out
        assert "re-imported rows 7-12" in out, out
        lms.wait_import(count(lms, "SELECT max(id) FROM imports"))
        assert_each_learner_imported_once(lms, 12)


@pytest.mark.parametrize("name", ["..", "x/../..", "a\\..\\..\\b", "/etc/passwd", "\x1b[2Jx.csv", "é" * 300, ""])
def test_a_file_name_from_an_ethosce_site_is_a_plain_local_name(name, tmp_path):
    from importconsole.operations.ethosce import held_file_name

    local = held_file_name(name, "held-file.csv")
    assert "/" not in local and "\\" not in local and not local.startswith(".")
    assert len(local) <= 100 and local.isascii() and local.isprintable()
    assert (tmp_path / local).resolve().parent == tmp_path.resolve()
