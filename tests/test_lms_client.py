"""Every LmsClient method against the reference LMS, and ApiFacts answering the import-file rules
from it (batched, cached, from a worker thread)."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
import uuid

import pytest

from importconsole.importfile.facts import UserKey
from importconsole.lms.client import LmsClient, RetryPolicy
from importconsole.lms.errors import LockMismatch, NotFound, ServerError
from importconsole.lms.facts import ApiFacts
from helpers.sandbox import ADMIN_TOKEN, dataset, start_sandbox
from helpers.wait import wait_for



@pytest.fixture(scope="module")
def lms():
    data = dataset(enrollments=[
        {"external_user_id": "u1", "course_external_id": "C-VAR", "status": "complete", "date_completed": "2026-01-05",
         "credits": [{"credit_type": "ama", "amount": 2.0, "source": "import"}]},
    ])
    with start_sandbox(data, rows_per_second=None, faults=True) as server:
        yield server


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path, lms):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    yield
    lms.clear_faults()


def fast():
    return RetryPolicy(attempts=4, base=0.01, cap=0.05)


async def test_reads_mirror_the_api(lms):
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        me = await c.me()
        assert (me.username, me.role) == ("admin", "site_admin")
        types = {t.machine_name: t for t in await c.credit_types()}
        assert types["ama"].reports_to == ("pars",) and types["cme_other"].reports_to == ()
        found = await c.lookup_courses(["C-FIXED", "C-NOPE"])
        assert [x.external_id for x in found.items] == ["C-FIXED"] and found.missing == ("C-NOPE",)
        fixed = found.items[0]
        assert fixed.credits[0].max == 1.0 and not fixed.credits[0].enable_variable_credit
        assert (await c.course(fixed.id)).title == "Fixed credit course"
        assert [x.external_id for x in (await c.courses(external_id="C-VAR")).items] == ["C-VAR"]
        users = await c.lookup_users(["u1", "nobody"], ["U2@EXAMPLE.ORG", "ghost@example.org"])
        assert {u.external_user_id for u in users.items} == {"u1", "u2"}
        assert users.missing_external_user_ids == ("nobody",) and users.missing_emails == ("ghost@example.org",)
        [enrollment] = await c.lookup_enrollments([{"external_user_id": "u1", "course_external_id": "C-VAR"},
                                                   {"email": "u3@example.org", "course_external_id": "C-VAR"}])
        assert enrollment.status == "complete" and enrollment.credits[0].amount == 2.0
        records = await c.credit_records(course_external_id="C-VAR", source="import")
        assert [r.credit_type for r in records.items] == ["ama"]
        assert isinstance(await c.reporting_queue(entity="pars"), list)
        assert isinstance(await c.pars_report("C-VAR"), list)
        assert {lock.importer for lock in await c.locks()} == {"course", "global"}
        assert (await c.lock("global")).locked is False
        with pytest.raises(NotFound):
            await c.get_import(999999)


async def test_lookups_are_chunked_at_the_api_limit(lms):
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        ids = [f"x{n}" for n in range(2500)] + ["u1"]
        users = await c.lookup_users(ids)
    assert [u.external_user_id for u in users.items] == ["u1"] and len(users.missing_external_user_ids) == 2500


async def test_submit_then_read_it_back(lms, tmp_path):
    content = b"external_user_id,complete\nu2,0\nu3,0\n"
    path = tmp_path / "two.csv"
    path.write_bytes(content)
    seen = []
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        imp = await c.submit_import(path, importer="course", course_external_id="C-VAR", progress=lambda s, t: seen.append((s, t)))
        assert imp.file_sha256 == hashlib.sha256(content).hexdigest() and imp.file_name == "two.csv"
        assert seen[-1] == (len(content), len(content))
        await asyncio.to_thread(lms.wait_import, imp.id)
        done = await c.get_import(imp.id)
        assert done.finished and done.rows_processed == 2
        rows = await c.import_rows(imp.id)
        assert [r.row for r in rows.items] == [1, 2] and rows.items[1].line == 3
        assert await c.import_file(imp.id) == content
        remaining = await c.import_remaining(imp.id)
        assert remaining.content.splitlines()[0] == b"external_user_id,complete"
        page = await c.list_imports(file_sha256=imp.file_sha256)
        assert [i.id for i in page.items] == [imp.id]
        assert (await c.find_import_by_key(imp.idempotency_key)).id == imp.id


async def test_create_user_survives_a_lost_answer_without_making_two(lms):
    email = f"new-{uuid.uuid4().hex[:6]}@example.org"
    lms.fault("drop_after_body", path_prefix="/api/v1/users", method="POST")
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        user = await c.create_user(email=email, first_name="New")
    assert user.email == email
    assert lms.db().execute("SELECT count(*) FROM users WHERE email_lower = ?", (email,)).fetchone()[0] == 1


async def test_create_user_that_keeps_failing_says_so_and_makes_no_user(lms):
    """A change the LMS keeps failing: the client says so after its tries, having checked nothing happened."""
    email = f"never-{uuid.uuid4().hex[:6]}@example.org"
    lms.fault("status", status=503, times=50, path_prefix="/api/v1/users", method="POST", exact=True)
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        with pytest.raises(ServerError) as err:
            await c.create_user(email=email, first_name="Never")
    assert "Could not create the user after" in str(err.value) and "(checked)" in str(err.value)
    assert lms.db().execute("SELECT count(*) FROM users WHERE email_lower = ?", (email,)).fetchone()[0] == 0


async def test_unlock_is_compare_and_unlock(lms):
    r = lms.submit(b"external_user_id ,complete\nu4,1\n", course="C-FIXED", key=f"h-{uuid.uuid4()}")
    holder = r.json()["id"]
    await asyncio.to_thread(wait_for, lambda: lms.get_import(holder)["state"] == "running")
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        with pytest.raises(LockMismatch) as err:
            await c.unlock("course", holder + 1000)
        assert f"locked by import {holder}" in str(err.value) and "Nothing was unlocked" in str(err.value)
        # A lost answer: the unlock happened; the client sees it from the import's state.
        lms.fault("drop_after_body", path_prefix="/api/v1/locks", method="POST")
        result = await c.unlock("course", holder)
    assert result.import_.state == "unlocked" and result.lock.locked is False


async def test_api_facts_answer_the_rules_from_a_worker_thread(lms):
    async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=fast()) as c:
        facts = ApiFacts(c, asyncio.get_running_loop())
        assert facts.online
        courses = await asyncio.to_thread(facts.courses, ["C-VAR", "C-NOPE"])
        assert courses["C-NOPE"] is None
        var = courses["C-VAR"].credits["ama"]
        assert var.enable_variable_credit and str(var.max) == "2.0"
        users = await asyncio.to_thread(facts.users, ["u1", "nobody"], ["U2@example.org"])
        assert users[UserKey(external_user_id="u1")].id and users[UserKey(external_user_id="nobody")] is None
        assert users[UserKey(email="u2@example.org")].external_user_id == "u2"
        keys = [(UserKey(external_user_id="u1"), "C-VAR"), (UserKey(email="u1@example.org"), "C-VAR"),
                (UserKey(external_user_id="u5"), "C-VAR")]
        enrollments = await asyncio.to_thread(facts.enrollments, keys)
        assert enrollments[keys[0]].complete and enrollments[keys[1]].complete and enrollments[keys[2]] is None
        assert enrollments[keys[0]].credits[0].source == "import"
        types = await asyncio.to_thread(facts.credit_types)
        assert types["acpe"].reports_to == ("cpe_monitor",)
        calls = facts.calls
        await asyncio.to_thread(facts.courses, ["C-VAR"])
        await asyncio.to_thread(facts.credit_types)
        assert facts.calls == calls, "answers are cached for the run"
        with pytest.raises(RuntimeError, match="worker thread"):
            facts.courses(["C-NEW"])


@pytest.mark.slow
async def test_upload_streams_from_disk_with_flat_memory(tmp_path):
    """4 MB goes up while the client's own allocations stay under 1 MB (a quarter of the file)."""
    path = tmp_path / "big.csv"
    with open(path, "wb") as fh:
        fh.write(b"external_user_id,complete\n")
        line = b"u1,0\n"
        fh.write(line * (4_000_000 // len(line)))
    with start_sandbox(dataset(), rows_per_second=1) as server:
        async with LmsClient(server.base_url, ADMIN_TOKEN, retry=fast(), upload_timeout=120) as c:
            tracemalloc.start()
            try:
                imp = await c.submit_import(path, importer="course", course_external_id="C-VAR")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert imp.file_size == path.stat().st_size
    print(f"uploaded {path.stat().st_size / 1e6:.0f} MB, client peak traced memory {peak / 1e6:.2f} MB")
    assert peak < 1_000_000


async def test_plain_http_to_this_machine_never_goes_through_a_proxy(lms, monkeypatch):
    """HTTP_PROXY on a jump host must not carry the token, unencrypted, to the proxy."""
    import socket

    with socket.socket() as trap, monkeypatch.context() as env:
        trap.bind(("127.0.0.1", 0))
        trap.listen(5)
        trap.settimeout(0.2)
        proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            env.setenv(name, proxy)
        env.delenv("NO_PROXY", raising=False)
        env.delenv("no_proxy", raising=False)
        async with LmsClient(lms.base_url, ADMIN_TOKEN, retry=RetryPolicy(attempts=1), timeout=2.0) as c:
            assert (await c.me()).username == "admin"
        with pytest.raises(OSError):
            trap.accept()  # nothing ever connected to the proxy
