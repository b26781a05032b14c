"""Behaviours 8-10 (the silent hang, the lock, Unlock), restarts, and idempotency, over real HTTP."""

from __future__ import annotations

import threading
import time

import httpx

from helpers.sandbox import dataset, start_sandbox
from helpers.wait import wait_for

USERS = [{"external_user_id": f"u{n}", "email": f"u{n}@example.org"} for n in range(1, 21)]
HEADER = b"external_user_id,complete,date_completed\n"


def twenty_rows(trigger_row: int | None = 7, trigger: str = "\u200b") -> bytes:
    rows = []
    for n in range(1, 21):
        user = f"u{n}" + (trigger if n == trigger_row else "")
        rows.append(f"{user},1,2026-06-{n:02d}\n".encode())
    return HEADER + b"".join(rows)


def _enrolled(db) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT u.external_user_id FROM enrollments e JOIN users u ON u.id = e.user_id ORDER BY u.id")]


def _stalled(lms, import_id: int, rows: int, settle: float = 0.3) -> dict:
    """Wait until the import has processed `rows` rows, then give it time to move (it must not)."""
    lms.wait_rows(import_id, rows)
    time.sleep(settle)  # 0.3 s = 60 rows' worth at 200 rows/s
    return lms.get_import(import_id)


def test_a_zero_width_space_in_row_7_hangs_the_importer_until_unlock_even_across_a_restart():
    with start_sandbox(dataset(users=USERS), rows_per_second=200) as lms:
        imp = lms.submit(twenty_rows(), course="C-FIXED").json()
        hung = _stalled(lms, imp["id"], 6)
        assert (hung["state"], hung["rows_processed"], hung["rows_failed"], hung["error"]) == ("running", 6, 0, None)
        lock = lms.client().get("/locks/course").json()
        assert (lock["locked"], lock["import_id"]) == (True, imp["id"])
        # Behaviour 9: the importer refuses new work while it is locked, and says who holds it.
        r = lms.submit(b"external_user_id,complete\nu20,1\n", course="C-VAR")
        assert (r.status_code, r.json()["error"], r.json()["lock"]["import_id"]) == (423, "importer_locked", imp["id"])

        lms.restart()
        after = _stalled(lms, imp["id"], 6)
        assert (after["state"], after["rows_processed"]) == ("running", 6)
        assert lms.client().get("/locks/course").json()["import_id"] == imp["id"]
        remaining = lms.client().get(f"/imports/{imp['id']}/remaining")
        assert remaining.headers["x-first-row"] == "7"
        assert remaining.content == HEADER + twenty_rows().split(b"\n", 7)[7]

        r = lms.client().post("/locks/course/unlock", json={"import_id": imp["id"]})
        assert r.status_code == 200
        assert r.json()["import"]["state"] == "unlocked"
        assert r.json()["lock"] == {"importer": "course", "locked": False, "import_id": None, "held_by": None, "since": None}
        db = lms.db()
        assert _enrolled(db) == [f"u{n}" for n in range(1, 7)]
        assert db.execute("SELECT count(*) FROM import_rows WHERE import_id = ?", (imp["id"],)).fetchone()[0] == 6
        # The importer takes new work again.
        assert lms.submit(b"external_user_id,complete\nu20,1\n", course="C-FIXED").status_code == 201


def test_headers_with_trailing_spaces_hang_before_row_1(sandbox):
    imp = sandbox.submit(b"external_user_id ,complete\nu1,1\nu2,1\n", course="C-FIXED").json()
    hung = _stalled(sandbox, imp["id"], 0)
    assert (hung["state"], hung["rows_processed"], hung["started_at"] is not None) == ("running", 0, True)
    assert sandbox.db().execute("SELECT count(*) FROM enrollments").fetchone()[0] == 0


def test_each_trigger_character_hangs_the_importer():
    triggers = ["\x00", "\x07", "\x1b", "\u00a0", "\u200c", "\u200d", "\ufeff", "\ufffd"]
    with start_sandbox(dataset(users=USERS), rows_per_second=None) as lms:
        for trigger in triggers:
            imp = lms.submit(twenty_rows(trigger_row=2, trigger=trigger), course="C-FIXED").json()
            hung = _stalled(lms, imp["id"], 1, settle=0.1)  # unthrottled: 0.1 s is hundreds of rows
            assert (hung["state"], hung["rows_processed"]) == ("running", 1), repr(trigger)
            assert lms.client().post("/locks/course/unlock", json={"import_id": imp["id"]}).status_code == 200


def test_accented_names_and_invalid_utf8_bytes(sandbox):
    ok = sandbox.submit("external_email,first_name,complete\nu1@example.org,José Zoë 王芳,1\n".encode(), course="C-FIXED")
    assert sandbox.wait_import(ok.json()["id"])["state"] == "completed"
    # cp1252 bytes are not UTF-8: the LMS reads U+FFFD there and stops (behaviour 8).
    bad = sandbox.submit(b"external_email,first_name,complete\nu2@example.org,Jos\xe9,1\n", course="C-FIXED").json()
    assert _stalled(sandbox, bad["id"], 0)["state"] == "running"


def test_unlock_names_the_import_it_expects_to_hold_the_lock(sandbox):
    imp = sandbox.submit(twenty_rows(trigger_row=1), course="C-FIXED").json()
    _stalled(sandbox, imp["id"], 0)
    r = sandbox.client().post("/locks/course/unlock", json={"import_id": imp["id"] + 1})
    assert (r.status_code, r.json()["error"], r.json()["lock"]["import_id"]) == (409, "lock_mismatch", imp["id"])
    r = sandbox.client().post("/locks/global/unlock", json={"import_id": imp["id"]})
    assert (r.status_code, r.json()["lock"]["locked"]) == (409, False)
    assert sandbox.get_import(imp["id"])["state"] == "running"


def test_two_admins_unlock_at_once_one_wins_one_gets_409(sandbox):
    imp = sandbox.submit(twenty_rows(trigger_row=3), course="C-FIXED").json()
    _stalled(sandbox, imp["id"], 2)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def unlock():
        with sandbox.client() as client:
            barrier.wait()
            statuses.append(client.post("/locks/course/unlock", json={"import_id": imp["id"]}).status_code)

    threads = [threading.Thread(target=unlock) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert sandbox.get_import(imp["id"])["state"] == "unlocked"


def test_a_running_import_resumes_after_a_crash_and_imports_every_row_once():
    with start_sandbox(dataset(users=USERS), rows_per_second=40) as lms:
        imp = lms.submit(twenty_rows(trigger_row=None), course="C-FIXED").json()
        lms.wait_rows(imp["id"], 3)
        lms.kill()  # SIGKILL mid-import: only committed rows survive
        lms.start()
        done = lms.wait_import(imp["id"])
        assert (done["state"], done["rows_processed"]) == ("completed", 20)
        db = lms.db()
        assert _enrolled(db) == [f"u{n}" for n in range(1, 21)]
        assert db.execute("SELECT count(*), count(DISTINCT row) FROM import_rows").fetchone()[:] == (20, 20)


def test_one_key_one_import(sandbox):
    body = b"external_user_id,complete\nu1,1\n"
    first = sandbox.submit(body, course="C-FIXED", key="k-1")
    again = sandbox.submit(body, course="C-FIXED", key="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    sandbox.wait_import(first.json()["id"])
    assert sandbox.submit(body, course="C-FIXED", key="k-1").json()["id"] == first.json()["id"]
    other = sandbox.submit(body, course="C-VAR", key="k-1")
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_mismatch")
    assert sandbox.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1
    found = sandbox.client().get("/imports", params={"idempotency_key": "k-1"}).json()["items"]
    assert [i["id"] for i in found] == [first.json()["id"]]


def test_a_replayed_key_is_answered_even_while_its_import_holds_the_lock(sandbox):
    body = twenty_rows(trigger_row=2)
    first = sandbox.submit(body, course="C-FIXED", key="k-hang").json()
    _stalled(sandbox, first["id"], 1)
    again = sandbox.submit(body, course="C-FIXED", key="k-hang")
    assert (again.status_code, again.json()["id"]) == (200, first["id"])


def test_the_same_key_while_the_first_request_is_in_flight_is_409():
    with start_sandbox(dataset(), faults=True) as lms:
        fault = {"kind": "slow", "seconds": 1.0, "times": 1, "path_prefix": "/api/v1/imports", "method": "POST"}
        assert httpx.post(lms.url("/_faults"), json=fault, headers=lms.auth()).status_code == 200
        results: dict[str, httpx.Response] = {}

        def slow():
            results["slow"] = lms.submit(b"external_user_id,complete\nu1,1\n", course="C-FIXED", key="k-2")

        thread = threading.Thread(target=slow)
        thread.start()
        wait_for(lambda: lms.db().execute("SELECT 1").fetchone(), timeout=2)
        time.sleep(0.3)
        second = lms.submit(b"external_user_id,complete\nu1,1\n", course="C-FIXED", key="k-2")
        thread.join()
        assert (second.status_code, second.json()["error"]) == (409, "idempotency_in_flight")
        assert results["slow"].status_code == 201
        assert lms.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_every_header_trigger_hangs_before_row_1_and_a_bom_alone_does_not():
    headers = [b" external_user_id,complete", b"external_user_id,\tcomplete", b"external_user_id,complete\xc2\xa0",
               b"external_\xe2\x80\x8buser_id,complete", b"\xef\xbb\xbf\xef\xbb\xbfexternal_user_id,complete",
               b"external_user_id,com\x01plete"]
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        for header in headers:
            imp = lms.submit(header + b"\nu1,1\nu2,1\n", course="C-FIXED").json()
            hung = _stalled(lms, imp["id"], 0, settle=0.1)
            assert (hung["state"], hung["rows_processed"]) == ("running", 0), header
            assert lms.client().post("/locks/course/unlock", json={"import_id": imp["id"]}).status_code == 200
        done = lms.wait_import(lms.submit(b"\xef\xbb\xbfexternal_user_id,complete\nu1,1\n", course="C-FIXED").json()["id"])
        assert (done["state"], done["rows_processed"]) == ("completed", 1)
        assert lms.db().execute("SELECT count(*) FROM enrollments").fetchone()[0] == 1
