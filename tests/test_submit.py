"""Submitting a file: validated first (errors refuse, warnings need confirmation), the file must not
change after validation, the same file twice is named, every change is journaled, and a console
killed right after the upload reconciles from the journal to the one import. The token appears
nowhere the console writes or prints."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from importconsole.cli import main
from importconsole.journal import Journal
from importconsole.lms.client import LmsClient, RetryPolicy
from importconsole.lms.errors import Unauthorized
from importconsole.operations.submit import SubmitRefused, prepare_submit, send_plan
from helpers.sandbox import dataset, start_sandbox
from helpers.profiles import profile_env, reference_profile, use_env
from helpers.wait import wait_for

TOKEN = "tok-SECRET-submit-5d8e2c4b9a71"
ROOT = Path(__file__).resolve().parents[1]
LMS_URL: list[str] = []


@pytest.fixture(scope="module")
def lms():
    tokens = [{"token": TOKEN, "username": "jdoe", "role": "site_admin", "display_name": "J. Doe"}]
    with start_sandbox(dataset(tokens=tokens), rows_per_second=None, faults=True) as server:
        LMS_URL[:] = [server.base_url]
        yield server


@pytest.fixture
def home(tmp_path, monkeypatch, lms):
    """The admin's machine: a config with a profile for the LMS, the token in the environment."""
    use_env(monkeypatch, {**profile_env(tmp_path, lms, name="test", username="jdoe", token=TOKEN),
                          "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    yield tmp_path
    lms.clear_faults()
    assert_token_nowhere(tmp_path)


def assert_token_nowhere(folder: Path, *texts: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path}"
    for text in texts:
        assert TOKEN not in text


def client(lms, **kw):
    return LmsClient(lms.base_url, TOKEN, retry=RetryPolicy(attempts=4, base=0.01, cap=0.05), **kw)


def clean_file(folder: Path, course: str = "C-VAR") -> Path:
    """Completions without credit for two learners who exist (the page's recommended shape): no findings.
    Fresh learners each time, so an earlier test's completions do not make it an update."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"t{tag}-{n}" for n in (1, 2)]
    for ext in ids:
        r = httpx.post(f"{LMS_URL[0]}/api/v1/users", json={"external_user_id": ext, "email": f"{ext}@example.org"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert r.status_code == 201, r.text
    path = folder / f"completions-{tag}.csv"
    rows = "".join(f"{ext},1,2026-03-01,2026-01-01\n" for ext in ids)
    path.write_bytes(f"external_user_id,complete,date_completed,enrollment_start\n{rows}".encode())
    return path


def held_file(folder: Path) -> Path:
    """Completions for learners who have no account yet: they wait in the holding table, so the
    same file can be validated clean again after it was imported."""
    tag = uuid.uuid4().hex[:8]
    path = folder / f"newcomers-{tag}.csv"
    path.write_bytes(f"external_email,complete,date_completed\nnew1-{tag}@example.org,1,2026-03-01\nnew2-{tag}@example.org,1,2026-03-01\n".encode())
    return path


async def submit(c, path: Path, journal: Journal, *, importer: str = "course", course: str | None = "C-VAR", **send):
    """What the CLI and the TUI do once any warnings are confirmed: prepare the plan, then send it."""
    plan = await prepare_submit(c, path, importer=importer, course_external_id=course)
    return await send_plan(plan, client=c, journal=journal, **send)


def submit_while_the_lms_holds_the_upload(lms, path: Path, output=subprocess.PIPE) -> tuple[subprocess.Popen, Journal]:
    """`importconsole submit PATH` in its own process, the LMS taking 2 s over each upload; returns once the
    journal holds the entry written before the upload (the body is on its way)."""
    lms.fault("slow", seconds=2.0)
    proc = subprocess.Popen([sys.executable, "-m", "importconsole", "submit", str(path), "--course", "C-VAR"],
                            stdout=output, stderr=output, env=os.environ.copy(), cwd=ROOT)
    journal = Journal()
    wait_for(lambda: journal.pending(), timeout=20, message="the journal entry written before the upload")
    return proc, journal


def imports_of(lms, path: Path):
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return lms.db().execute("SELECT id FROM imports WHERE file_sha256 = ?", (sha,)).fetchall()


async def test_a_clean_file_is_submitted_once_and_journaled(lms, home):
    path = clean_file(home)
    journal = Journal()
    sent = []
    async with client(lms) as c:
        outcome = await submit(c, path, journal, profile="test", lms_user="jdoe", progress=lambda s, t: sent.append(s))
    assert [r[0] for r in imports_of(lms, path)] == [outcome.import_.id]
    assert outcome.receipt.created and sent[-1] == path.stat().st_size
    [entry] = journal.entries()
    assert (entry.action, entry.outcome, entry.import_id) == ("submit", "created", outcome.import_.id)
    assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and entry.row_count == 2
    assert entry.idempotency_key == lms.get_import(outcome.import_.id)["idempotency_key"]
    assert entry.profile == "test" and entry.lms_user == "jdoe" and entry.file_path == str(path)
    lms.wait_import(outcome.import_.id)


async def test_errors_refuse_naming_row_column_rule_and_fix(lms, home):
    path = home / "credit-on-incomplete.csv"
    path.write_bytes(b"external_user_id,complete,credit_type,credits\nu4,0,ama,1.0\n")
    journal = Journal()
    async with client(lms) as c:
        with pytest.raises(SubmitRefused) as err:
            await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
    text = str(err.value)
    assert "nothing was sent" in text and "row 1 (line 2)" in text and "[credit-on-incomplete]" in text and "Fix:" in text
    assert imports_of(lms, path) == [] and journal.entries() == []


async def test_warnings_need_confirmation(lms, home):
    path = home / "legacy.csv"
    path.write_bytes(f"external_user_id,external_course_id,title,complete,date_completed\nu5,C-LEGACY-{uuid.uuid4().hex[:6]},Old course,1,2020-01-01\n".encode())
    journal = Journal()
    async with client(lms) as c:
        plan = await prepare_submit(c, path, importer="global")
        listed = "\n".join(plan.warnings)
        assert "NOT included in PARS" in listed and "course-shell-no-certificate" in listed
        assert imports_of(lms, path) == [] and plan.needs_confirmation
        outcome = await send_plan(plan, client=c, journal=journal)
    assert [r[0] for r in imports_of(lms, path)] == [outcome.import_.id]
    lms.wait_import(outcome.import_.id)


async def test_the_same_file_again_names_the_earlier_import(lms, home):
    path = held_file(home)
    journal = Journal()
    async with client(lms) as c:
        first = await submit(c, path, journal)
        lms.wait_import(first.import_.id)
        again = await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
    assert again.needs_confirmation and f"was imported before: import {first.import_.id}" in "\n".join(again.warnings)
    assert len(imports_of(lms, path)) == 1


async def test_a_file_changed_after_validation_is_refused(lms, home):
    path = clean_file(home)
    journal = Journal()
    async with client(lms) as c:
        plan = await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
        original = path.read_bytes()
        path.write_bytes(original.replace(b"2026-03-01", b"2026-03-02"))
        with pytest.raises(SubmitRefused, match="changed on disk since it was validated"):
            await send_plan(plan, client=c, journal=journal)
        with pytest.raises(SubmitRefused, match="changed on disk since it was validated"):
            await prepare_submit(c, path, importer="course", course_external_id="C-VAR", validated_sha256=plan.sha256)
        moved = path.with_suffix(".moved")
        path.rename(moved)
        with pytest.raises(SubmitRefused, match="cannot be read any more"):
            await send_plan(plan, client=c, journal=journal)
        moved.rename(path)
    assert imports_of(lms, path) == [] and journal.entries() == []
    path.write_bytes(original)
    assert imports_of(lms, path) == []


async def test_401_mid_run_stops_with_a_sentence_and_keeps_the_journal(lms, home):
    path = clean_file(home)
    journal = Journal()
    lms.fault("status", status=401)
    async with client(lms, profile="test") as c:
        with pytest.raises(Unauthorized) as err:
            await submit(c, path, journal)
    assert "importconsole login --profile test" in str(err.value)
    [entry] = journal.entries()
    assert entry.outcome == "refused" and "did not accept the API token" in entry.message
    assert imports_of(lms, path) == []


def test_cli_submit_prints_the_import_id_and_imports_lists_it(lms, home, capsys):
    path = held_file(home)
    assert main(["submit", str(path), "--course", "C-VAR"]) == 0
    out = capsys.readouterr()
    [(import_id,)] = imports_of(lms, path)
    assert f"Import {import_id} created" in out.out
    lms.wait_import(import_id)
    assert main(["imports", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert import_id in [i["id"] for i in listed]
    assert main(["imports", "--state", "completed"]) == 0
    table = capsys.readouterr().out
    assert path.name in table
    assert main(["submit", str(path), "--course", "C-VAR"]) == 1  # same file again, no --yes
    again = capsys.readouterr()
    assert f"import {import_id}" in again.err and "--yes" in again.err
    assert main(["submit", str(home / "missing.csv"), "--course", "C-VAR"]) == 2
    assert "no such file" in capsys.readouterr().err
    workbook = home / "export.csv"
    workbook.write_bytes(b"PK\x03\x04" + bytes(200))  # an .xlsx renamed .csv
    assert main(["submit", str(workbook), "--course", "C-VAR"]) == 2
    refused = capsys.readouterr().err
    assert str(workbook) in refused and "Excel" in refused and "Nothing was sent" in refused and "Traceback" not in refused
    assert_token_nowhere(home, out.out, out.err, table, again.out, again.err)


def test_cli_submit_without_a_reachable_lms_says_so(home, capsys, monkeypatch):
    from importconsole.cli import lms_cmds

    monkeypatch.setattr(lms_cmds, "retry_policy", lambda: RetryPolicy(attempts=3, base=0.01, cap=0.02))
    config = reference_profile(home / "closed.toml", "http://127.0.0.1:9", name="x", username="jdoe", default=False)
    path = clean_file(home)
    assert main(["submit", str(path), "--course", "C-VAR", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert "Could not reach the LMS at 127.0.0.1" in err and "Traceback" not in err


@pytest.mark.slow
def test_9_console_killed_after_sending_reconciles_from_the_journal(lms, home):
    """SIGKILL the submitting process while the LMS handles its upload; the next run asks the LMS
    about the journal's pending entry: still exactly one import, and the journal names it."""
    path = clean_file(home)
    proc, journal = submit_while_the_lms_holds_the_upload(lms, path)
    time.sleep(0.5)  # the body is sent; the LMS is still handling it
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    [pending] = journal.pending()
    assert pending.outcome == "sending" and pending.import_id is None
    [(import_id,)] = wait_for(lambda: imports_of(lms, path), timeout=10, message="the LMS to finish handling")

    code = main(["journal", "--reconcile"])
    assert code == 0
    assert journal.pending() == []
    [entry] = journal.entries()
    assert (entry.outcome, entry.import_id) == ("reconciled", import_id)
    assert len(imports_of(lms, path)) == 1
    lms.wait_import(import_id)
    assert_token_nowhere(home, out.decode(), err.decode())


@pytest.mark.slow
def test_9_a_new_submit_reconciles_first_and_does_not_import_twice(lms, home, capsys):
    path = held_file(home)
    proc, journal = submit_while_the_lms_holds_the_upload(lms, path, output=subprocess.DEVNULL)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    [(import_id,)] = wait_for(lambda: imports_of(lms, path), timeout=10, message="the LMS to finish handling")
    lms.wait_import(import_id)
    assert main(["submit", str(path), "--course", "C-VAR"]) == 1
    err = capsys.readouterr().err
    assert f"it is import {import_id}" in err and f"imported before: import {import_id}" in err
    assert len(imports_of(lms, path)) == 1


def test_cli_submit_watch_follows_the_import_to_its_end(lms, home, capsys):
    path = clean_file(home)
    assert main(["submit", str(path), "--course", "C-VAR", "--watch"]) == 0
    out = capsys.readouterr().out
    [(import_id,)] = imports_of(lms, path)
    assert f"Import {import_id} created" in out
    assert "completed" in out.split(f"Import {import_id} created", 1)[1]


async def test_debug_logs_of_a_faulty_submit_never_carry_the_token(lms, home, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    path = held_file(home)
    for kind in ("error_500_after", "drop_after_body"):
        lms.fault(kind)
    async with client(lms) as c:
        outcome = await submit(c, path, Journal())
    assert outcome.receipt.reconciled and len(imports_of(lms, path)) == 1
    assert "retrying" in caplog.text or "already held" in " ".join(outcome.notes)
    assert len(caplog.records) > 5 and TOKEN not in caplog.text
    assert repr(c).startswith("LmsClient(") and TOKEN not in repr(c) and TOKEN not in repr(c.__dict__)


async def test_an_outcome_the_lms_cannot_confirm_is_journaled_and_settled_later(lms, home):
    """The answer is lost AND the LMS cannot be asked: nothing more is sent, the journal says
    "unknown"; once the LMS answers again, reconcile names the one import."""
    from importconsole.lms.errors import UnknownOutcome
    from importconsole.operations.submit import reconcile_pending

    path = held_file(home)
    journal = Journal()
    async with client(lms) as c:
        plan = await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
        lms.fault("drop_after_body")
        lms.fault("status", status=503, times=100, method="GET", path_prefix="/api/v1/imports")
        with pytest.raises(UnknownOutcome) as err:
            await send_plan(plan, client=c, journal=journal)
        assert "Nothing more was sent" in str(err.value) and "journal --reconcile" in str(err.value)
        [entry] = journal.pending()
        assert entry.outcome == "unknown"
        [(import_id,)] = imports_of(lms, path)
        lms.clear_faults()
        [settled] = await reconcile_pending(journal, c)
    assert settled.outcome == "reconciled" and settled.import_.id == import_id
    assert journal.pending() == [] and len(imports_of(lms, path)) == 1
    lms.wait_import(import_id)


def test_login_checks_the_token_with_the_lms_before_storing_it(lms, home, monkeypatch, capsys):
    import io

    import keyring

    from helpers.keyrings import MemoryKeyring

    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN")
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-the-token-123\n"))
    assert main(["login"]) == 3
    err = capsys.readouterr().err
    assert "did not accept the API token" in err and "not stored" in err and ring.store == {}
    monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN + "\n"))
    assert main(["login"]) == 0
    assert ring.store == {("importconsole", "test:jdoe"): TOKEN}
    path = held_file(home)
    assert main(["submit", str(path), "--course", "C-VAR"]) == 0  # the token now comes from the keyring
    out = capsys.readouterr()
    assert_token_nowhere(home, out.out, out.err)
    assert len(imports_of(lms, path)) == 1


def test_the_progress_bar_draws_on_a_terminal_and_stays_quiet_otherwise(monkeypatch):
    import io
    import re

    monkeypatch.setenv("TERM", "xterm")  # 16 colours, as on many jump hosts
    monkeypatch.delenv("NO_COLOR", raising=False)

    from importconsole.cli.lms_cmds import upload_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = upload_progress(stream=screen)
    bar(0, 2_000_000)
    bar(2_000_000, 2_000_000)
    bar.done()
    drawn = screen.getvalue()
    assert "\x1b[" in drawn and drawn.rstrip("\x1b[?25h").endswith("\n")  # rich.progress, its line ended
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn).split("\r")[-1].strip()
    assert re.fullmatch(r"Uploading ━+ 100% 2\.0/2\.0 MB", last), last
    # Finished, the bar is green: rich's own finished colour is the empty bar's grey in 16 colours.
    assert "\x1b[32m━━━━━━━━━━" in drawn.split("\r")[-1]
    piped = io.StringIO()  # a pipe or a log: no escape code, one line at the end
    bar = upload_progress(stream=piped)
    bar(1_000, 2_000)
    bar(2_000, 2_000)
    bar.done()
    assert piped.getvalue() == "Uploaded 2000 bytes\n"
    quiet = io.StringIO()
    bar = upload_progress("Validating", quiet_end=True, stream=quiet)
    bar(2_000, 2_000)
    bar.done()
    assert quiet.getvalue() == ""


# ---- a file that changes during the upload; uploads still in flight; journal before the POST ----

def big_held_file(folder: Path, rows: int = 3000) -> Path:
    """Over two 64 KiB upload chunks, every row a learner without an account (held): validates clean."""
    tag = uuid.uuid4().hex[:8]
    path = folder / f"big-{tag}.csv"
    body = "".join(f"newcomer-{tag}-{n:05d}@example.org,1,2026-03-01\n" for n in range(rows))
    path.write_bytes(f"external_email,complete,date_completed\n{body}".encode())
    assert path.stat().st_size > 2 * 64 * 1024
    return path


@pytest.mark.parametrize("change", ["edited in place", "a row appended"])
async def test_a_file_changed_during_the_upload_is_cut_off_and_never_imported(lms, home, change):
    path = big_held_file(home)
    journal = Journal()
    touched = []

    def edit_while_sending(sent: int, total: int) -> None:
        if touched:
            return
        touched.append(sent)
        if change == "edited in place":  # same inode, same size, in a part not sent yet: only the hash can tell
            with open(path, "r+b") as fh:
                fh.seek(-20, os.SEEK_END)
                fh.write(b"X")
        else:
            with open(path, "ab") as fh:
                fh.write(b"late@example.org,1,2026-03-01\n")

    async with client(lms) as c:
        plan = await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
        with pytest.raises(SubmitRefused) as err:
            await send_plan(plan, client=c, journal=journal, progress=edit_while_sending)
    text = str(err.value)
    assert "changed on disk during the upload" in text and "nothing was imported" in text and str(path) in text
    assert touched and touched[0] < path.stat().st_size
    assert lms.db().execute("SELECT count(*) FROM imports WHERE file_name = ?", (path.name,)).fetchone()[0] == 0
    [entry] = journal.entries()
    assert entry.outcome == "not_created" and entry.import_id is None


async def test_an_upload_still_in_flight_is_not_called_lost_and_blocks_the_same_file(lms, home):
    """The console died after sending; the LMS is still taking the upload. Reconciling now must not
    say "never reached the LMS", and the same file is not sent again until it is settled."""
    import asyncio

    from importconsole.operations.submit import reconcile_pending

    path = held_file(home)
    journal = Journal()
    key = f"ic-{uuid.uuid4()}"
    async with client(lms) as c:
        plan = await prepare_submit(c, path, importer="course", course_external_id="C-VAR")
        journal.begin("submit", base_url=c.base_url, file_path=path, sha256=plan.sha256, idempotency_key=key,
                      importer="course", course_external_id="C-VAR")
        lms.fault("slow", seconds=2.0)
        in_flight = asyncio.create_task(asyncio.to_thread(
            lambda: lms.submit(path.read_bytes(), course="C-VAR", key=key, file_name=path.name)))
        await asyncio.sleep(0.5)  # the LMS holds the upload, no import row yet
        assert imports_of(lms, path) == []
        [early] = await reconcile_pending(journal, c)
        assert "not on the LMS yet" in early.sentence and "never reached" not in early.sentence
        assert [e.idempotency_key for e in journal.pending()] == [key]
        with pytest.raises(SubmitRefused, match="not settled yet"):
            await send_plan(plan, client=c, journal=journal)
        assert (await in_flight).status_code == 201
        [settled] = await reconcile_pending(journal, c)
    [(import_id,)] = imports_of(lms, path)
    assert settled.outcome == "reconciled" and settled.import_.id == import_id
    assert journal.pending() == [] and len(journal.entries()) == 1  # the refused send journaled nothing
    lms.wait_import(import_id)


async def test_an_old_upload_the_lms_never_got_is_settled_as_not_created(lms, home):
    import time as clock

    from importconsole.operations.submit import SETTLE_AFTER, reconcile_pending

    journal = Journal()
    async with client(lms) as c:
        journal.begin("submit", base_url=c.base_url, file_path=home / "lost.csv", sha256="0" * 64,
                      idempotency_key=f"ic-{uuid.uuid4()}", importer="course")
        [young] = await reconcile_pending(journal, c)
        assert young.outcome == "sending" and journal.pending()
        [old] = await reconcile_pending(journal, c, now=clock.time() + SETTLE_AFTER + 1)
    assert old.outcome == "not_created" and "never reached the LMS" in old.sentence
    assert journal.pending() == []


async def test_the_journal_entry_is_on_disk_before_the_upload_is_sent(lms, home):
    """A transport that forwards to the real LMS and, at the moment POST /imports leaves, reads
    the journal file from disk."""
    seen = []

    class Witness(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request):
            if request.method == "POST" and request.url.path.endswith("/imports"):
                on_disk = [json.loads(line) for line in Journal().path.read_text().splitlines()]
                seen.append((request.headers["Idempotency-Key"], on_disk))
            return await super().handle_async_request(request)

    path = held_file(home)
    async with client(lms, transport=Witness()) as c:  # no me() first, as in the console: send_plan asks
        outcome = await submit(c, path, Journal())
    [(key, on_disk)] = seen
    [begin] = [r for r in on_disk if r["idempotency_key"] == key]
    assert begin["outcome"] == "sending" and begin["sha256"] == outcome.plan.sha256 and begin["row_count"] == 2
    assert begin["lms_user"] == "jdoe" and begin["os_user"] and begin["file_path"] == str(path)
    assert not [r for r in on_disk if r.get("event") == "complete"]
    [entry] = Journal().entries()
    assert (entry.outcome, entry.import_id, entry.lms_user) == ("created", outcome.import_.id, "jdoe")
    lms.wait_import(outcome.import_.id)


def test_a_refused_token_from_the_environment_says_where_it_came_from(lms, home, monkeypatch, capsys):
    monkeypatch.setenv("IMPORTCONSOLE_TOKEN", "expired-token-0000")
    assert main(["imports"]) == 3
    err = capsys.readouterr().err
    assert "did not accept the API token" in err and "came from IMPORTCONSOLE_TOKEN" in err
    assert "expired-token-0000" not in err and "Traceback" not in err


def test_ctrl_c_during_the_upload_says_how_to_find_out_what_happened(lms, home):
    path = held_file(home)
    proc, journal = submit_while_the_lms_holds_the_upload(lms, path)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    text = err.decode()
    assert f"Interrupted during the upload of {path.name}" in text and "journal --reconcile" in text and "Traceback" not in text
    [(import_id,)] = wait_for(lambda: imports_of(lms, path), timeout=10, message="the LMS to finish handling")
    assert main(["journal", "--reconcile"]) == 0 and Journal().entries()[0].import_id == import_id
    lms.wait_import(import_id)


def test_a_file_name_with_escape_sequences_is_shown_harmlessly(lms, home, capsys):
    path = held_file(home)
    evil = path.with_name("q3\x1b]0;owned\x07\x1b[2J.csv")
    path.rename(evil)
    assert main(["submit", str(evil), "--course", "C-VAR"]) == 0
    assert main(["journal"]) == 0
    assert main(["submit", str(evil) + "\x1b[0m", "--course", "C-VAR"]) == 2  # refused, naming the path
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err and "\x07" not in out.out + out.err and "q3<U+001B>" in out.err
    [(import_id,)] = imports_of(lms, evil)
    assert f"Import {import_id} created: q3<U+001B>" in out.out
    lms.wait_import(import_id)


def test_a_long_wait_before_a_retry_is_announced(lms, home, capsys, monkeypatch):
    from importconsole.cli import lms_cmds

    monkeypatch.setattr(lms_cmds, "ANNOUNCE_WAITS_FROM", 0.5)
    lms.fault("status", status=429, retry_after="1", method="GET", path_prefix="/api/v1/imports")
    assert main(["imports"]) == 0
    err = capsys.readouterr().err
    assert "trying again in 1 s" in err and "nothing is sent twice" in err


def test_imports_says_when_there_are_more_than_shown(lms, home, capsys):
    for _ in range(2):
        path = held_file(home)
        assert main(["submit", str(path), "--course", "C-VAR"]) == 0
        lms.wait_import(imports_of(lms, path)[0][0])
    capsys.readouterr()
    assert main(["imports", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "(1 shown; there are more" in out and len(out.strip().splitlines()) == 3


def test_a_file_over_the_lms_upload_limit_is_refused_for_its_size_not_for_keys(tmp_path, monkeypatch, capsys):
    tokens = [{"token": TOKEN, "username": "jdoe", "role": "site_admin", "display_name": "J. Doe"}]
    with start_sandbox(dataset(tokens=tokens), extra_args=("--max-upload", "64K")) as small:
        use_env(monkeypatch, {**profile_env(tmp_path, small, name="small", username="jdoe", default=False, token=TOKEN),
                              "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
        path = tmp_path / "big.csv"
        path.write_bytes(b"external_email,complete,date_completed\n"
                         + b"".join(b"new%d@example.org,1,2026-03-01\n" % n for n in range(3000)))
        assert main(["submit", str(path), "--course", "C-VAR", "--profile", "small", "--yes"]) != 0
        err = capsys.readouterr().err
        assert "refused the file for its size" in err and "64 KiB" in err, err
        assert "Too many keys" not in err and "Traceback" not in err
        assert small.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


async def test_an_upload_to_a_site_that_refuses_connections_is_announced_as_refused_not_busy(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    heard: list[bool] = []

    async def no_wait(seconds: float) -> None:
        return None

    policy = RetryPolicy(attempts=3, base=0.01, cap=0.02, sleep=no_wait, announce=lambda seconds, refused: heard.append(refused))
    path = tmp_path / "a.csv"
    path.write_bytes(b"external_email,complete\nx@example.org,1\n")
    async with LmsClient(f"http://127.0.0.1:{port}", TOKEN, retry=policy) as c:
        with pytest.raises(Exception, match="Nothing was sent"):
            await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert heard == [True, True]
