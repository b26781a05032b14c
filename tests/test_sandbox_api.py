"""The reference LMS's API basics over real HTTP: auth and roles, look-ups, the import lifecycle."""

from __future__ import annotations

import httpx

from helpers.wait import wait_for


def test_me_names_the_signed_in_admin(sandbox):
    response = httpx.get(sandbox.url("/me"), headers=sandbox.auth())
    assert response.status_code == 200
    assert response.json() == {"username": "admin", "role": "site_admin", "display_name": "Site Admin"}


def test_no_token_or_an_unknown_token_is_401(sandbox):
    assert httpx.get(sandbox.url("/me")).status_code == 401
    response = httpx.get(sandbox.url("/credit-types"), headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_course_admin_may_not_unlock_create_users_or_use_the_global_importer(sandbox):
    headers = sandbox.auth("course_admin")
    r = httpx.post(sandbox.url("/locks/course/unlock"), headers=headers, json={"import_id": 1})
    assert (r.status_code, r.json()["error"], r.json()["role_needed"]) == (403, "forbidden", "site_admin")
    assert httpx.post(sandbox.url("/users"), headers=headers, json={"email": "x@example.org"}).status_code == 403
    r = sandbox.submit(b"external_user_id,external_course_id,title\nu1,C-FIXED,x\n", importer="global", role="course_admin")
    assert r.status_code == 403
    assert sandbox.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


def test_course_admin_may_import_to_the_course_importer(sandbox):
    r = sandbox.submit(b"external_user_id,complete\nu1,0\n", course="C-FIXED", role="course_admin")
    assert r.status_code == 201
    assert sandbox.wait_import(r.json()["id"])["created_by"] == "courseadmin"


def test_lookups_answer_found_and_missing(sandbox):
    client = sandbox.client()
    r = client.post("/courses/lookup", json={"external_ids": ["C-VAR", "NOPE"]})
    assert r.json()["missing"] == ["NOPE"]
    [course] = r.json()["items"]
    assert course["credits"] == [{"credit_type": "ama", "min": 0.25, "max": 2.0, "increments": 0.25,
                                  "enable_variable_credit": True}]
    r = client.post("/users/lookup", json={"external_user_ids": ["u1", "zz"], "emails": ["U2@EXAMPLE.ORG"]})
    assert sorted(u["external_user_id"] for u in r.json()["items"]) == ["u1", "u2"]
    assert r.json()["missing_external_user_ids"] == ["zz"]
    r = client.post("/users/lookup", json={"external_user_ids": [f"x{i}" for i in range(1001)]})
    assert (r.status_code, r.json()["error"]) == (413, "too_many_keys")
    assert [c["machine_name"] for c in client.get("/credit-types").json()["items"]] == ["acpe", "ama", "ancc", "cme_other"]


def test_an_import_runs_row_by_row_and_frees_the_lock(sandbox):
    rows = "".join(f"u{n},1,2026-03-0{n}\n" for n in range(1, 6))
    r = sandbox.submit(("external_user_id,complete,date_completed\n" + rows).encode(), course="C-FIXED")
    assert r.status_code == 201
    imp = r.json()
    assert (imp["state"], imp["rows_total"]) == ("queued", 5)
    done = sandbox.wait_import(imp["id"])
    assert (done["state"], done["rows_processed"], done["rows_failed"]) == ("completed", 5, 0)
    lock = httpx.get(sandbox.url("/locks/course"), headers=sandbox.auth()).json()
    assert lock == {"importer": "course", "locked": False, "import_id": None, "held_by": None, "since": None}
    db = sandbox.db()
    assert db.execute("SELECT count(*) FROM enrollments WHERE status = 'complete'").fetchone()[0] == 5
    assert db.execute("SELECT count(*) FROM import_rows WHERE import_id = ? AND status = 'imported'",
                      (imp["id"],)).fetchone()[0] == 5


def test_an_unreadable_file_fails_with_a_reason_and_frees_the_lock(sandbox):
    r = sandbox.submit(b"PK\x03\x04 not really a workbook", course="C-FIXED", file_name="grades.csv")
    done = sandbox.wait_import(r.json()["id"])
    assert done["state"] == "failed"
    assert "grades.csv" in done["error"] and "Excel" in done["error"]
    remaining = sandbox.client().get(f"/imports/{done['id']}/remaining")
    assert (remaining.headers["x-first-row"], remaining.content) == ("1", b"PK\x03\x04 not really a workbook")
    assert not httpx.get(sandbox.url("/locks/course"), headers=sandbox.auth()).json()["locked"]


def test_semicolon_and_tab_files_with_a_bom_are_read(sandbox):
    r = sandbox.submit("\ufeffexternal_email;complete\nu3@example.org;1\n".encode(), course="C-FIXED")
    done = sandbox.wait_import(r.json()["id"])
    assert (done["state"], done["rows_processed"]) == ("completed", 1)
    r = sandbox.submit(b"external_user_id\tcomplete\nu4\t1\n", course="C-FIXED")
    assert sandbox.wait_import(r.json()["id"])["state"] == "completed"
    assert sandbox.db().execute("SELECT count(*) FROM enrollments WHERE status = 'complete'").fetchone()[0] == 2


def test_an_empty_file_or_a_title_row_fails_with_a_reason(sandbox):
    empty = sandbox.wait_import(sandbox.submit(b" \r\n", course="C-FIXED").json()["id"])
    assert (empty["state"], empty["error"]) == ("failed", "import.csv: the file is empty")
    titled = sandbox.wait_import(sandbox.submit(b"Q3 completions\nexternal_user_id,complete\nu1,1\n",
                                                course="C-FIXED").json()["id"])
    assert titled["state"] == "failed" and "header row was not recognised" in titled["error"]


def test_a_bad_row_fails_and_the_rest_goes_on(sandbox):
    body = b"external_user_id,complete,credits,credit_type\nu1,yes,,\nu2,1,1,nope\nu3,1,,\n"
    r = sandbox.submit(body, course="C-FIXED")
    done = sandbox.wait_import(r.json()["id"])
    assert (done["state"], done["rows_processed"], done["rows_failed"]) == ("completed_with_errors", 3, 2)
    rows = sandbox.client().get(f"/imports/{done['id']}/rows", params={"status": "failed"}).json()["items"]
    assert [(r["row"], r["line"]) for r in rows] == [(1, 2), (2, 3)]
    assert "must be 1 or 0" in rows[0]["message"] and "nope" in rows[1]["message"]


def test_the_submitted_file_comes_back_byte_for_byte(sandbox):
    body = b"external_user_id,complete\r\nu1,1\r\nu2,1"
    imp = sandbox.submit(body, course="C-FIXED").json()
    assert sandbox.client().get(f"/imports/{imp['id']}/file").content == body
    sandbox.wait_import(imp["id"])
    listed = sandbox.client().get("/imports", params={"file_sha256": imp["file_sha256"]}).json()["items"]
    assert [i["id"] for i in listed] == [imp["id"]]


def test_the_event_stream_reports_locks_and_progress(sandbox):
    seen: list[str] = []
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", sandbox.url("/events"), headers=sandbox.auth()) as stream:
            lines = stream.iter_lines()
            wait_for(lambda: next(lines).startswith("event: lock") or None, timeout=5, message="lock event")
            imp = sandbox.submit(b"external_user_id,complete\nu1,1\nu2,1\n", course="C-FIXED").json()
            for line in lines:
                seen.append(line)
                if line.startswith("data:") and '"state":"completed"' in line:
                    break
    assert any(f'"id":{imp["id"]}' in line for line in seen)
    assert any('"rows_processed":2' in line for line in seen)


def test_on_connect_the_stream_sends_every_running_import_and_both_locks(sandbox):
    imp = sandbox.submit(b"external_user_id,complete\nu1,1\nu2\xe2\x80\x8b,1\n", course="C-FIXED").json()
    sandbox.wait_rows(imp["id"], 1)
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", sandbox.url("/events"), headers=sandbox.auth()) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            first: list[str] = []
            for line in stream.iter_lines():
                first.append(line)
                if len([x for x in first if x.startswith("event: lock")]) == 2:
                    break
    events = [line.split(": ", 1)[1] for line in first if line.startswith("event: ")]
    assert events == ["import", "lock", "lock"]
    assert f'"id":{imp["id"]}' in first[1] and '"state":"running"' in first[1]


def test_remaining_is_byte_for_byte_with_bom_crlf_and_quoted_line_breaks(sandbox):
    header = b"\xef\xbb\xbfexternal_user_id,first_name,complete\r\n"
    rows = [b'u1,"Ann\r\nMarie",1\r\n', b"u2,Bob,1\r\n", b"\r\n", b"u3,Cy\xc2\xa0,1\r\n", b'u4,"Di, Jr",1']
    imp = sandbox.submit(header + b"".join(rows), course="C-FIXED").json()
    assert imp["rows_total"] == 4  # the blank line is not a record
    sandbox.wait_rows(imp["id"], 2)
    remaining = sandbox.client().get(f"/imports/{imp['id']}/remaining")
    assert remaining.headers["x-first-row"] == "3"
    assert remaining.content == header + rows[3] + rows[4]
    results = sandbox.client().get(f"/imports/{imp['id']}/rows").json()["items"]
    assert [(r["row"], r["line"]) for r in results] == [(1, 2), (2, 4)]  # row 2 starts after the quoted break
    assert sandbox.db().execute("SELECT first_name FROM users u JOIN enrollments e ON e.user_id = u.id "
                                "WHERE u.external_user_id = 'u1'").fetchone() is not None


def test_lists_page_with_next_offset(sandbox):
    body = "external_user_id,complete\n" + "".join(f"u{n},0\n" for n in range(1, 6))
    imp = sandbox.wait_import(sandbox.submit(body.encode(), course="C-FIXED").json()["id"])
    client = sandbox.client()
    page = client.get(f"/imports/{imp['id']}/rows", params={"limit": 2}).json()
    assert ([r["row"] for r in page["items"]], page["next_offset"]) == ([1, 2], 2)
    last = client.get(f"/imports/{imp['id']}/rows", params={"limit": 2, "offset": 4}).json()
    assert ([r["row"] for r in last["items"]], last["next_offset"]) == ([5], None)
    assert client.get(f"/imports/{imp['id']}/rows", params={"limit": 5000}).status_code == 422
    done = client.get(f"/imports/{imp['id']}/remaining")
    assert (done.headers["x-first-row"], done.content) == ("6", b"external_user_id,complete\n")
    assert client.get("/imports/999").status_code == 404
    assert client.get("/imports/abc").status_code == 404


def test_credits_that_are_not_finite_numbers_fail_the_row_and_the_import_goes_on(sandbox):
    # float() reads these; the LMS must refuse them as it does "two", never stop on them.
    body = b"external_user_id,complete,credit_type,credits\nu1,1,ama,nan\nu2,1,ama,inf\nu3,1,ama,-Infinity\nu4,1,ama,1\n"
    done = sandbox.wait_import(sandbox.submit(body, course="C-VAR").json()["id"])
    assert (done["state"], done["rows_processed"], done["rows_failed"]) == ("completed_with_errors", 4, 3)
    rows = sandbox.client().get(f"/imports/{done['id']}/rows").json()["items"]
    assert [r["status"] for r in rows] == ["failed", "failed", "failed", "imported"]
    assert all("not a number" in r["message"] for r in rows[:3])
    assert not sandbox.client().get("/locks/course").json()["locked"]


def test_a_cell_over_the_csv_field_limit_fails_its_row_or_the_file_never_a_500(sandbox):
    huge = b"a" * 200_000  # over Python csv's 128 KiB field limit
    done = sandbox.wait_import(sandbox.submit(b"external_user_id,first_name,complete\nu1," + huge + b",1\nu2,Bo,1\n",
                                              course="C-FIXED").json()["id"])
    assert (done["state"], done["rows_processed"], done["rows_failed"]) == ("completed_with_errors", 2, 1)
    rows = sandbox.client().get(f"/imports/{done['id']}/rows").json()["items"]
    assert [r["status"] for r in rows] == ["failed", "imported"] and "longer than" in rows[0]["message"]
    r = sandbox.submit(b"external_user_id," + huge + b",complete\nu3,x,1\n", course="C-FIXED")
    assert r.status_code == 201, r.text
    failed = sandbox.wait_import(r.json()["id"])
    assert failed["state"] == "failed" and "header" in failed["error"] and "longer than" in failed["error"]
    assert not sandbox.client().get("/locks/course").json()["locked"]
