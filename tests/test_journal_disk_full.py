"""A full disk under the journal (issue 12, item 5), on a real 64 KiB tmpfs filled to the last
page: before the upload nothing is sent and the admin is told the journal's disk is full; after
the upload the admin is told the import exists (its id) but the journal could not record it, the
exit code is not 0, no half line is left, and `journal --reconcile` records it once there is room."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.sandbox import dataset, start_sandbox
from helpers.profiles import profile_env
from helpers.wait import wait_for

from importconsole.cli import main
from importconsole.journal import Journal

ROOT = Path(__file__).resolve().parents[1]
PAGE = 4096


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write until the file system says ENOSPC."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * PAGE)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def records(tmp_path: Path) -> Path:
    path = tmp_path / "completions.csv"
    path.write_bytes(b"external_user_id,complete,date_completed\r\nu1,1,2026-01-02\r\nu2,1,2026-01-02\r\n")
    return path


def environment(tmp_path: Path, lms, state: Path) -> dict[str, str]:
    return {**profile_env(tmp_path, lms, state=state), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def imports(lms) -> int:
    return lms.db().execute("SELECT count(*) FROM imports").fetchone()[0]


def test_journal_disk_full_before_the_upload_sends_nothing_and_says_why(tmp_path, small_disk, monkeypatch, capsys):
    state = small_disk / "state"
    state.mkdir()
    fill(small_disk)
    with start_sandbox(dataset()) as lms:
        for name, value in environment(tmp_path, lms, state).items():
            monkeypatch.setenv(name, value)
        code = main(["submit", str(records(tmp_path)), "--course", "C-FIXED", "--yes"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert "Nothing was sent" in err and "could not be written: its disk is full" in err
        assert str(state / "journal.jsonl") in err and "unexpected" not in err
        assert imports(lms) == 0
    journal = state / "journal.jsonl"
    assert not journal.exists() or journal.read_bytes() == b""  # no half line left behind


def test_journal_disk_full_after_the_upload_names_the_import_and_exits_non_zero(tmp_path, small_disk, monkeypatch, capsys):
    state = small_disk / "state"
    with start_sandbox(dataset(), faults=True) as lms:
        env = environment(tmp_path, lms, state)
        # The LMS takes 2 s to answer the upload: the disk fills up meanwhile.
        lms.fault("slow", seconds=2.0)
        proc = subprocess.Popen([sys.executable, "-m", "importconsole", "submit", str(records(tmp_path)),
                                 "--course", "C-FIXED", "--yes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **env}, cwd=ROOT)
        journal_file = state / "journal.jsonl"
        wait_for(lambda: journal_file.exists() and journal_file.read_bytes().endswith(b"\n"), timeout=20,
                 message="the journal line written before the upload")
        # tmpfs counts whole pages: end the journal's page with blank lines (the journal skips
        # them), so the next line needs a page of its own, then take every page left.
        with open(journal_file, "ab") as fh:
            fh.write(b"\n" * (-journal_file.stat().st_size % PAGE))
        filler = fill(small_disk)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode not in (0, 70), (out, err)
        [(import_id,)] = lms.db().execute("SELECT id FROM imports").fetchall()
        assert f"Import {import_id} created" in out, (out, err)
        assert "could not be written: its disk is full" in err and "Do not submit the file again" in err
        assert f"records import {import_id}" in err and "unexpected" not in err
        journal = Journal(journal_file)
        [entry] = journal.entries()
        assert entry.outcome == "sending" and journal.skipped_lines == 0  # the begin line whole, no half line

        filler.unlink()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert main(["journal", "--reconcile"]) == 0
        capsys.readouterr()
        [entry] = journal.entries()
        assert (entry.outcome, entry.import_id) == ("reconciled", import_id)
        assert imports(lms) == 1
        assert lms.admin_token not in journal_file.read_text() + out + err
