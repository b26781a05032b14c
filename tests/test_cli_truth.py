"""Every sentence the CLI says is true when read (issue 10, sections 2 and 4)."""

from __future__ import annotations

import asyncio
import json
import time

from test_operations_support import cli_env, course_file, dataset, learners, start_sandbox, submit

from importconsole.cli import main


def test_diagnose_on_a_stalled_running_import_says_how_long_it_has_not_moved_and_whether_that_is_hung(
        monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(30)), rows_per_second=200) as lms:
        item = asyncio.run(submit(lms, course_file(30, bad_row=20), course="C-FIXED"))
        lms.wait_rows(item["id"], 19)
        time.sleep(1.5)
        cli_env(monkeypatch, tmp_path, lms, hung_after=1.0)
        main(["diagnose", str(item["id"])])
        out = capsys.readouterr().out
        assert f"Import {item['id']} (import.csv): running, 19/30 rows processed. It has not moved for " in out
        assert "(by the LMS's clock) and holds the course importer's lock: that counts as hung (hung after 1s" in out
        cli_env(monkeypatch, tmp_path, lms, hung_after=600.0)
        main(["diagnose", str(item["id"]), "--json"])
        data = json.loads(capsys.readouterr().out)
        assert data["hung"] is False and data["moved_ago"] >= 1.0
        assert "not hung yet (hung after 10m00s without progress while holding the lock)" in data["stall"]
