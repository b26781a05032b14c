"""Unlock + re-import against the real reference LMS, outcomes checked in its database:
every row of the original file imported exactly once; a moving import is never unlocked; two
consoles recovering the same import make one unlock and one re-import."""

import asyncio
import json

import pytest

from helpers.profiles import cli_env
from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import assert_each_learner_imported_once, client_for, count, course_file, hang, learners, submit

from importconsole.cli import main
from importconsole.journal import Journal
from importconsole.operations.recover import AlreadyUnlocked, ImportMoved, RecoveryRefused, execute_recovery, plan_recovery


async def test_recover_unlocks_and_reimports_only_the_rest_sanitized(tmp_path):
    with start_sandbox(dataset(users=learners(200)), rows_per_second=1000) as lms:
        item = await hang(lms)
        journal = Journal(tmp_path / "journal.jsonl")
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"], journal=journal)
            assert (plan.rows_committed, plan.first_row_left, plan.rows_left, plan.remainder_rows) == (119, 120, 81, 81)
            assert plan.holds_lock and plan.needs_unlock
            assert plan.diagnosis.row == 120 and plan.diagnosis.characters[0].code_point == "U+200B"
            assert [(c.row, c.column) for c in plan.changes if "special" in c.change] == [(120, "external_user_id")]
            # Users exist and ama is not variable in C-FIXED: the LMS awards and reports it itself.
            assert plan.completion_only_rows == tuple(range(120, 201))
            text = "\n".join(plan.describe())
            assert "rows 120-200" in text and "U+200B" in text and "completion-only" in text
            result = await execute_recovery(client, plan, journal=journal)
            base_url = client.base_url
        assert result.unlocked and result.reimport is not None and result.reimport_was_new
        reimport = await asyncio.to_thread(lms.wait_import, result.reimport.id)
        assert reimport["state"] == "completed" and reimport["rows_total"] == 81
        assert lms.get_import(item["id"])["state"] == "unlocked"
        assert count(lms, "SELECT count(*) FROM locks WHERE import_id IS NOT NULL") == 0
        assert count(lms, "SELECT count(*) FROM imports") == 2
        assert_each_learner_imported_once(lms, 200)
        # Rows 1-119 kept their imported credit (never reported); 120-200 were awarded and queued once.
        assert count(lms, "SELECT count(*) FROM credit_records WHERE source = 'import'") == 119
        assert count(lms, "SELECT count(*) FROM credit_records WHERE source = 'awarded'") == 81
        assert count(lms, "SELECT count(*) FROM reporting_queue WHERE entity = 'pars'") == 81
        assert count(lms, "SELECT count(DISTINCT user_id) FROM reporting_queue") == 81
    steps = {e.action: e for e in journal.entries()}
    assert steps["unlock"].outcome == "done" and steps["unlock"].import_id == item["id"]
    assert steps["reimport"].outcome == "created" and steps["reimport"].import_id == result.reimport.id
    assert steps["reimport"].idempotency_key == plan.idempotency_key
    # Without journal_fields (the TUI passes none) each entry still names its LMS, so a reimport
    # left "sending" is reconciled against the right one.
    assert steps["unlock"].base_url == steps["reimport"].base_url == base_url
    # The journal says why and what: the cause, the rows changed, the completion-only rows.
    assert steps["unlock"].extra["stopped_at_row"] == 120 and "U+200B" in steps["unlock"].extra["cause"]
    assert steps["reimport"].extra["rows_changed"][0] == 120
    assert steps["reimport"].extra["completion_only_rows"] == list(range(120, 201))
    assert str(item["id"]) in plan.idempotency_key


async def test_unlock_is_refused_when_the_import_moved_since_the_diagnosis(tmp_path):
    """A slow import that still moves looks stalled for a moment; the compare step catches it."""
    # 3 rows/s: the plan's two reads (import, remainder) fall between two rows even on a busy
    # machine, so the move is caught where it matters, at the compare-and-unlock.
    with start_sandbox(dataset(users=learners(30)), rows_per_second=3) as lms:
        item = await submit(lms, course_file(30), course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 2)
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            await asyncio.to_thread(lms.wait_rows, item["id"], plan.rows_committed + 1)
            with pytest.raises(ImportMoved) as refused:
                await execute_recovery(client, plan, journal=Journal(tmp_path / "j.jsonl"))
        assert "moved since the diagnosis" in str(refused.value) and "NOT unlocked" in str(refused.value)
        now = lms.get_import(item["id"])
        assert now["state"] == "running" and now["rows_processed"] > plan.rows_committed
        assert lms.client().get("/locks/course").json()["import_id"] == item["id"]
        assert count(lms, "SELECT count(*) FROM imports") == 1
        assert not [e for e in Journal(tmp_path / "j.jsonl").entries() if e.action == "unlock"]


async def test_two_consoles_recover_the_same_import_one_unlock_one_reimport(tmp_path):
    with start_sandbox(dataset(users=learners(60)), rows_per_second=1000) as lms:
        item = await hang(lms, rows=60, bad_row=25)
        async with client_for(lms) as first, client_for(lms) as second:
            plans = await asyncio.gather(plan_recovery(first, item["id"]), plan_recovery(second, item["id"]))
            assert plans[0].idempotency_key == plans[1].idempotency_key
            outcomes = await asyncio.gather(
                execute_recovery(first, plans[0], journal=Journal(tmp_path / "a.jsonl")),
                execute_recovery(second, plans[1], journal=Journal(tmp_path / "b.jsonl")),
                return_exceptions=True)
            won = [o for o in outcomes if not isinstance(o, BaseException)]
            lost = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], AlreadyUnlocked), outcomes
            assert "does not re-import" in str(lost[0])
            await asyncio.to_thread(lms.wait_import, won[0].reimport.id)
            # Later, the loser runs `reimport`: the same remainder gives the same import back.
            again = await plan_recovery(second, item["id"])
            assert not again.needs_unlock and again.idempotency_key == plans[0].idempotency_key
            late = await execute_recovery(second, again, unlock=False)
            assert late.reimport.id == won[0].reimport.id and not late.reimport_was_new
        assert count(lms, "SELECT count(*) FROM imports") == 2
        assert count(lms, "SELECT count(*) FROM imports WHERE state = 'unlocked'") == 1
        assert_each_learner_imported_once(lms, 60)


async def test_nothing_to_recover_for_an_import_that_completed():
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        item = await submit(lms, course_file(3), course="C-FIXED")
        await asyncio.to_thread(lms.wait_import, item["id"])
        async with client_for(lms) as client:
            with pytest.raises(RecoveryRefused, match="nothing to unlock"):
                await plan_recovery(client, item["id"])
        assert count(lms, "SELECT count(*) FROM imports") == 1


def test_cli_diagnose_then_recover_yes(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(40)), rows_per_second=1000) as lms:
        item = asyncio.run(hang(lms, rows=40, bad_row=12))
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["diagnose", str(item["id"])]) == 0
        shown = capsys.readouterr().out
        assert "row 12" in shown and "U+200B" in shown and "external_user_id" in shown
        assert "Next row to process: row 12" in shown and f"importconsole recover {item['id']}" in shown
        assert main(["recover", str(item["id"])]) == 1  # no terminal, no --yes: nothing happens
        assert lms.get_import(item["id"])["state"] == "running"
        capsys.readouterr()
        assert main(["recover", str(item["id"]), "--yes", "--json"]) == 0
        outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert outcome["plan"]["first_row_left"] == 12 and outcome["outcome"]["unlocked"]
        lms.wait_import(outcome["outcome"]["reimport_id"])
        assert_each_learner_imported_once(lms, 40)
        # Running it again does nothing new: the import is unlocked and its re-import exists.
        assert main(["reimport", str(item["id"]), "--yes", "--json"]) == 0
        again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert again["outcome"]["reimport_id"] == outcome["outcome"]["reimport_id"]
        # diagnose after the fact: the parent stopped at row 12; the re-import ended by itself.
        assert main(["diagnose", str(item["id"])]) == 0
        parent = capsys.readouterr().out
        assert "Stopped at row 12" in parent and f"importconsole reimport {item['id']}" in parent
        assert main(["diagnose", str(again["outcome"]["reimport_id"])]) == 1
        child = capsys.readouterr().out
        assert "completed, 29/29 rows processed. It ended by itself, so it did not hang" in child
        assert "cause unknown" not in child and "row 30" not in child
        assert count(lms, "SELECT count(*) FROM imports") == 2
        journal = (tmp_path / "state" / "journal.jsonl").read_text()
        assert lms.admin_token not in journal and lms.admin_token not in shown


async def test_header_with_a_trailing_space_hangs_before_row_1_and_recovers_with_a_clean_header(tmp_path):
    header = "external_user_id ,complete,date_completed,credit_type,credits"
    with start_sandbox(dataset(users=learners(10)), rows_per_second=1000) as lms:
        item = await submit(lms, course_file(10, header=header), course="C-FIXED")
        await asyncio.sleep(0.3)
        assert lms.get_import(item["id"])["rows_processed"] == 0
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            assert plan.diagnosis.cause == "header-whitespace" and plan.diagnosis.row == 1
            assert "'external_user_id '" in plan.diagnosis.summary()
            assert (plan.first_row_left, plan.remainder_rows) == (1, 10)
            assert plan.remainder.startswith(b"external_user_id,complete,")
            result = await execute_recovery(client, plan, journal=Journal(tmp_path / "j.jsonl"))
        await asyncio.to_thread(lms.wait_import, result.reimport.id)
        assert_each_learner_imported_once(lms, 10)


def test_cli_unlock_then_reimport_as_two_steps(monkeypatch, tmp_path, capsys):
    with start_sandbox(dataset(users=learners(20)), rows_per_second=1000) as lms:
        item = asyncio.run(hang(lms, rows=20, bad_row=5))
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["reimport", str(item["id"]), "--yes"]) == 1  # still locked: unlock first
        assert "unlock it first" in capsys.readouterr().out
        assert main(["unlock", str(item["id"]), "--yes"]) == 0
        out = capsys.readouterr().out
        assert f"unlocked import {item['id']}" in out and "the course importer is free" in out
        assert f"importconsole reimport {item['id']}" in out
        assert lms.get_import(item["id"])["state"] == "unlocked" and count(lms, "SELECT count(*) FROM imports") == 1
        assert main(["unlock", str(item["id"]), "--yes"]) == 1  # already unlocked: nothing to do
        capsys.readouterr()
        assert main(["reimport", str(item["id"]), "--yes", "--json"]) == 0
        outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        lms.wait_import(outcome["outcome"]["reimport_id"])
        assert_each_learner_imported_once(lms, 20)
        entries = [json.loads(line) for line in (tmp_path / "state" / "journal.jsonl").read_text().splitlines()]
        assert [e["action"] for e in entries if e["event"] == "begin"] == ["unlock", "reimport"]


TWO_TYPES = [{"external_id": "C-TWO", "title": "Two credit types", "has_certificate": True, "required_objects": 2,
              "credits": [{"credit_type": "ama", "min": 0.25, "max": 1.0, "increments": 0.25, "enable_variable_credit": False},
                          {"credit_type": "cme_other", "min": 0.5, "max": 2.0, "increments": 0.5,
                           "enable_variable_credit": True}]}]


async def hung_at_row_4(lms, content: bytes) -> dict:
    """`content` submitted to C-TWO stops before row 4 (a zero-width space in its credit type) and is hung at the
    tests' hung_after = 1 s; returns the Import."""
    item = await submit(lms, content, course="C-TWO")
    await asyncio.to_thread(lms.wait_rows, item["id"], 3)
    await asyncio.sleep(1.1)
    assert lms.get_import(item["id"])["rows_processed"] == 3
    return item


@pytest.mark.parametrize("header", ["external_user_id,complete,date_completed,credit_type,credits",
                                    "External_User_ID,Complete,Date_Completed,Credit_Type,Credits"])
async def test_the_plan_says_which_remaining_rows_the_lms_will_refuse_because_the_enrollment_is_complete(
        tmp_path, monkeypatch, capsys, header):
    """One row per credit type (page: Multiple credit types): u3's second row is where the import
    hung. Its enrollment was completed by the first row, so the re-import's row is refused
    (cannot update): the plan must say so before the admin confirms, not after. The header is read
    as the LMS reads it (`External_User_ID` is external_user_id)."""
    content = (header + "\r\n"
               "u1,1,2026-01-02,ama,1.0\r\nu2,1,2026-01-02,ama,1.0\r\nu3,1,2026-01-02,ama,1.0\r\n"
               "u3,1,2026-01-02,cme_other\u200b,1.5\r\nu4,1,2026-01-02,ama,1.0\r\n").encode()
    with start_sandbox(dataset(users=learners(4), courses=TWO_TYPES), rows_per_second=1000) as lms:
        item = await hung_at_row_4(lms, content)
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            assert plan.already_complete_rows == (4,)
            text = "\n".join(plan.describe())
            assert f"row 4: u3 already completed C-TWO (import {item['id']})" in text and "will refuse 1 of these rows" in text
            assert plan.to_json()["already_complete_rows"] == [4]
            cli_env(monkeypatch, tmp_path, lms)
            assert await asyncio.to_thread(main, ["recover", str(item["id"])]) == 1  # no terminal: only asks
            question = capsys.readouterr().err
            assert f"Unlock import {item['id']} and re-import rows 4-5 (2 rows; the LMS will refuse 1 of them)?" in question
            result = await execute_recovery(client, plan, journal=Journal(tmp_path / "j.jsonl"))
        done = await asyncio.to_thread(lms.wait_import, result.reimport.id)
        # What the plan said is what the LMS did: row 4 (the re-import's row 1) refused, row 5 imported.
        rows = lms.db().execute("SELECT row, status FROM import_rows WHERE import_id = ? ORDER BY row",
                                (done["id"],)).fetchall()
        assert [tuple(r) for r in rows] == [(1, "refused"), (2, "imported")]


class UnlockArrivesLate:
    """The real LMS over real HTTP; only the unlock request is held back until the import ended by
    itself (a timing no server can be asked for)."""

    def __init__(self, lms, import_id):
        import httpx

        self.inner, self.lms, self.import_id = httpx.AsyncHTTPTransport(), lms, import_id

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/unlock"):
            await asyncio.to_thread(self.lms.wait_import, self.import_id)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.slow  # a row every 2 s, so the plan is made between two rows even on a busy machine
async def test_an_import_that_ends_by_itself_before_the_unlock_is_not_reported_as_unlocked_by_someone(tmp_path):
    """409 on unlock does not always mean another admin unlocked it: the console says what the LMS
    holds (completed), never a guess."""
    with start_sandbox(dataset(users=learners(2)), rows_per_second=0.5) as lms:
        item = await submit(lms, course_file(2), course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 1)
        async with client_for(lms, transport=UnlockArrivesLate(lms, item["id"])) as client:
            plan = await plan_recovery(client, item["id"])
            with pytest.raises(ImportMoved) as refused:
                await execute_recovery(client, plan, journal=Journal(tmp_path / "j.jsonl"))
        text = str(refused.value)
        assert "was not unlocked" in text and "now completed with 2 of 2 rows" in text and "elsewhere" not in text
        assert lms.get_import(item["id"])["state"] == "completed"
        assert count(lms, "SELECT count(*) FROM imports") == 1
        assert [e.outcome for e in Journal(tmp_path / "j.jsonl").entries() if e.action == "unlock"] == ["refused"]


async def test_diagnose_reads_the_local_copy_the_journal_names_while_its_sha256_matches(tmp_path):
    """The file is read locally when the journal recorded it and it is still the same bytes;
    once it changed on disk, the LMS's copy is used instead."""
    import hashlib

    from importconsole.operations.hung import diagnose_import

    content = course_file(10, bad_row=4)
    local = tmp_path / "sent.csv"
    local.write_bytes(content)
    with start_sandbox(dataset(users=learners(10)), rows_per_second=1000) as lms:
        item = await submit(lms, content, course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 3)
        journal = Journal(tmp_path / "journal.jsonl")
        entry = journal.begin("submit", file_path=local, sha256=hashlib.sha256(content).hexdigest(), row_count=10,
                              importer="course", course_external_id="C-FIXED")
        journal.complete(entry, "created", import_id=item["id"])
        async with client_for(lms) as client:
            first = await diagnose_import(client, item["id"], journal=journal)
            local.write_bytes(content.replace(b"\xe2\x80\x8b", b""))  # edited after it was sent
            second = await diagnose_import(client, item["id"], journal=journal)
    assert first.file_source == str(local) and second.file_source == "server"
    for diagnosis in (first, second):
        assert [(c.row, c.code_point) for c in diagnosis.characters] == [(4, "U+200B")]


async def test_a_windows_1252_byte_hangs_the_import_and_the_plan_says_the_rest_is_re_encoded(tmp_path):
    """The LMS reads the file as UTF-8, so a cp1252 'é' is U+FFFD to it and hangs the import. The
    diagnosis names the byte; the re-import is the same rows in UTF-8, and the plan says so."""
    content = (b"external_user_id,first_name,complete,date_completed\r\n"
               b"u1,Ana,1,2026-01-02\r\nu2,Jos\xe9,1,2026-01-02\r\nu3,Li,1,2026-01-02\r\n")
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        item = await submit(lms, content, course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 1)
        await asyncio.sleep(0.1)
        assert lms.get_import(item["id"])["rows_processed"] == 1
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"], journal=Journal(tmp_path / "j.jsonl"))
            assert plan.diagnosis.row == 2 and "0xE9" in plan.diagnosis.summary()
            text = "\n".join(plan.describe())
            assert "re-encoded from Windows-1252 to UTF-8" in text and "needed no change" not in text
            assert "Jos\u00e9".encode() in plan.remainder
            result = await execute_recovery(client, plan, journal=Journal(tmp_path / "j.jsonl"))
        await asyncio.to_thread(lms.wait_import, result.reimport.id)
        assert_each_learner_imported_once(lms, 3)


async def test_a_remainder_the_console_cannot_read_is_refused_with_a_sentence_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Row 3 holds a 70 KB cell (over the reader's 64 KiB cap): the re-import cannot be prepared,
    so nothing is unlocked, and the admin reads why and where."""
    content = (b"external_user_id,first_name,complete,date_completed\r\n"
               b"u1,Ana,1,2026-01-02\r\nu2\xe2\x80\x8b,Bo,1,2026-01-02\r\nu3," + b"x" * 70_000 + b",1,2026-01-02\r\n")
    with start_sandbox(dataset(users=learners(3)), rows_per_second=1000) as lms:
        item = await submit(lms, content, course="C-FIXED")
        await asyncio.to_thread(lms.wait_rows, item["id"], 1)
        await asyncio.sleep(1.1)  # hung at the tests' hung_after = 1 s
        cli_env(monkeypatch, tmp_path, lms)
        code = await asyncio.to_thread(main, ["recover", str(item["id"]), "--yes"])
        captured = capsys.readouterr()
        assert code == 1, captured
        assert "Traceback" not in captured.err + captured.out
        assert "row 3" in captured.out and "Nothing was changed" in captured.out
        assert lms.get_import(item["id"])["state"] == "running"
        assert count(lms, "SELECT count(*) FROM imports") == 1
        # What the sentence offers works: unlock alone, then the rows are left to the admin.
        code = await asyncio.to_thread(main, ["unlock", str(item["id"]), "--yes"])
        captured = capsys.readouterr()
        assert code == 0, captured
        assert "not possible from the console" in captured.out and "row 3" in captured.out
        assert "fix rows 2-3 in a copy of the file by hand" in captured.out
        assert lms.get_import(item["id"])["state"] == "unlocked"
        assert count(lms, "SELECT count(*) FROM imports") == 1
