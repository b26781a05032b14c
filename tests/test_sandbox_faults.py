"""The test-only fault switch: each kind does what docs/api.md says, and the database shows whether
the request was handled (so client tests can assert "exactly one import")."""

from __future__ import annotations

import json

import httpx
import pytest

from helpers.sandbox import dataset, start_sandbox

BODY = b"external_user_id,complete\nu1,1\n"


@pytest.fixture(scope="module")
def lms():
    with start_sandbox(dataset(), faults=True) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(lms):
    yield
    httpx.delete(lms.url("/_faults"), headers=lms.auth())
    for imp in lms.client().get("/imports", params={"state": "running"}).json()["items"]:
        lms.client().post(f"/locks/{imp['importer']}/unlock", json={"import_id": imp["id"]})


def _fault(lms, **fault) -> None:
    assert httpx.post(lms.url("/_faults"), json=fault, headers=lms.auth()).status_code == 200


def _imports(lms) -> int:
    return lms.db().execute("SELECT count(*) FROM imports").fetchone()[0]


def _submit_done(lms, key: str) -> httpx.Response:
    r = lms.submit(BODY, course="C-FIXED", key=key)
    if r.status_code in (200, 201):
        lms.wait_import(r.json()["id"])
    return r


def test_drop_after_body_commits_the_import_and_loses_the_answer(lms):
    before = _imports(lms)
    _fault(lms, kind="drop_after_body")
    with pytest.raises(httpx.TransportError):
        lms.submit(BODY, course="C-FIXED", key="drop-1")
    assert _imports(lms) == before + 1
    # The retry with the same key finds the same import: exactly one.
    again = _submit_done(lms, "drop-1")
    assert again.status_code == 200
    assert _imports(lms) == before + 1


def test_500_before_does_nothing_and_500_after_commits(lms):
    before = _imports(lms)
    _fault(lms, kind="error_500_before")
    assert lms.submit(BODY, course="C-FIXED", key="e5-1").status_code == 500
    assert _imports(lms) == before
    _fault(lms, kind="error_500_after")
    assert lms.submit(BODY, course="C-FIXED", key="e5-2").status_code == 500
    assert _imports(lms) == before + 1
    found = lms.client().get("/imports", params={"idempotency_key": "e5-2"}).json()["items"]
    lms.wait_import(found[0]["id"])


def test_status_with_retry_after_fires_times_times_then_the_server_answers_normally(lms):
    _fault(lms, kind="status", status=429, retry_after="7", times=2)
    before = _imports(lms)
    for _ in range(2):
        r = lms.submit(BODY, course="C-FIXED", key="st-1")
        assert (r.status_code, r.headers["retry-after"]) == (429, "7")
    assert _imports(lms) == before
    assert _submit_done(lms, "st-1").status_code == 201


def test_truncated_and_non_json_bodies_after_handling(lms):
    _fault(lms, kind="truncated_body")
    r = lms.submit(BODY, course="C-FIXED", key="tr-1")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert _submit_done(lms, "tr-1").status_code == 200  # it was created
    _fault(lms, kind="non_json")
    r = lms.submit(BODY, course="C-FIXED", key="nj-1")
    assert (r.status_code, r.headers["content-type"]) == (200, "text/html")
    assert _submit_done(lms, "nj-1").status_code == 200


def test_faults_match_path_and_method_only(lms):
    _fault(lms, kind="status", status=503, path_prefix="/api/v1/locks", method="GET")
    assert lms.client().get("/me").status_code == 200
    assert lms.client().get("/locks").status_code == 503
    assert lms.client().get("/locks").status_code == 200


def test_a_bad_fault_is_refused(lms):
    r = httpx.post(lms.url("/_faults"), json={"kind": "explode"}, headers=lms.auth())
    assert (r.status_code, r.json()["error"]) == (422, "invalid")


def test_the_fault_switch_refuses_anyone_without_a_valid_token(lms):
    # Issue 12, item 5: a test-only switch is still no open door to whoever reaches the port.
    fault = {"kind": "status", "status": 503, "path_prefix": "/api/v1/me", "method": "GET"}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = httpx.post(lms.url("/_faults"), json=fault, headers=headers)
        assert (r.status_code, r.json()["error"]) == (401, "unauthorized") and "token" in r.json()["message"]
        assert httpx.delete(lms.url("/_faults"), headers=headers).status_code == 401
    assert lms.client().get("/me").status_code == 200  # nothing was switched on


def test_a_fault_with_numbers_out_of_range_is_refused_with_a_sentence(lms):
    for fault in ({"kind": "slow", "times": 1e400}, {"kind": "slow", "seconds": "nan"}, {"kind": "slow", "seconds": 1e400},
                  {"kind": "status", "times": -1}):
        r = httpx.post(lms.url("/_faults"), content=json.dumps(fault), headers={**lms.auth(), "Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (422, "invalid"), (fault, r.text)
    assert lms.client().get("/me").status_code == 200
