"""The audit journal: written before a change is sent, completed after, 0600, append-only; an
entry cut short by a kill is survived, and `pending()` finds what was left "sending"."""

import json
import multiprocessing
import os
import stat

import pytest

from importconsole.cli import main
from importconsole.journal import Journal, default_journal_path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")


def _begin(journal, **kw):
    fields = dict(profile="prod", base_url="http://127.0.0.1:1/api/v1", lms_user="jdoe", file_path="/data/q3.csv",
                  sha256="ab" * 32, row_count=20, idempotency_key="ic-1", importer="course", course_external_id="C-1")
    fields.update(kw)
    return journal.begin("submit", **fields)


def test_entry_is_sending_until_completed_and_file_is_private(tmp_path):
    journal = Journal()
    assert journal.path == default_journal_path() == tmp_path / "state" / "journal.jsonl"
    entry = _begin(journal)
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    [pending] = journal.pending()
    assert pending.entry_id == entry and pending.outcome == "sending"
    assert pending.os_user and pending.lms_user == "jdoe" and pending.sha256 == "ab" * 32 and pending.row_count == 20
    journal.complete(entry, "created", import_id=42)
    assert journal.pending() == []
    [done] = journal.entries()
    assert done.outcome == "created" and done.import_id == 42 and done.completed_at
    lines = journal.path.read_text().splitlines()
    assert [json.loads(x)["event"] for x in lines] == ["begin", "complete"]  # appended, never rewritten


def test_a_loose_existing_file_is_tightened(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    journal.path.write_text("")
    os.chmod(journal.path, 0o644)
    _begin(journal)
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600


def test_a_line_cut_short_by_a_kill_is_skipped_and_does_not_swallow_the_next(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    first = _begin(journal)
    with open(journal.path, "ab") as fh:
        fh.write(b'{"entry": "dead", "event": "beg')  # killed mid-write
    second = _begin(journal, idempotency_key="ic-2")
    assert [e.entry_id for e in journal.pending()] == [first, second]
    assert journal.skipped_lines == 1


def test_pending_is_per_lms(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    _begin(journal, base_url="http://127.0.0.1:1/api/v1")
    _begin(journal, base_url="https://other.example.org/api/v1")
    assert len(journal.pending(base_url="https://other.example.org/api/v1/")) == 1
    assert len(journal.pending(base_url="https://other.example.org")) == 1
    assert len(journal.pending(base_url="http://127.0.0.1:1/")) == 1


def _writer(path, n):
    journal = Journal(path)
    for i in range(n):
        journal.complete(journal.begin("submit", idempotency_key=f"k{os.getpid()}-{i}"), "created", import_id=i)


def test_two_consoles_appending_at_once_lose_nothing(tmp_path):
    path = tmp_path / "j.jsonl"
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, 50)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    entries = Journal(path).entries()
    assert len(entries) == 100 and all(e.outcome == "created" for e in entries)


def test_journal_command_shows_entries_and_pending_hint(capsys):
    journal = Journal()
    journal.complete(_begin(journal), "created", import_id=7)
    _begin(journal, file_path="/data/second.csv", idempotency_key="ic-2")
    assert main(["journal"]) == 0
    out = capsys.readouterr().out
    assert "created" in out and "import 7" in out and "q3.csv" in out
    assert "second.csv" in out and "journal --reconcile" in out
    assert main(["journal", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["outcome"] for e in data] == ["created", "sending"]


def test_an_unknown_outcome_stays_pending_until_the_lms_is_asked(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    entry = _begin(journal)
    journal.complete(entry, "unknown", message="the LMS could not be asked")
    assert [e.entry_id for e in journal.pending()] == [entry]
    journal.complete(entry, "reconciled", import_id=5)
    assert journal.pending() == [] and journal.entries()[0].import_id == 5
