"""Issue 12 (hardening), the reference LMS's part, over real HTTP, reading the server's database:
uploads that are too large, hostile file names, and inputs that used to answer 500."""

from __future__ import annotations

import hashlib
import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from helpers.sandbox import dataset, start_sandbox

BOUNDARY = "hardening-boundary"


def _multipart(file_name: str, content: bytes, course: str = "C-FIXED") -> bytes:
    """A multipart body written by hand: httpx would quote or trim a hostile file name itself."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="importer"\r\n\r\ncourse\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="course"\r\n\r\n{course}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def _post_import(lms, body, headers=None) -> httpx.Response:
    return httpx.post(lms.url("/imports"), content=body, timeout=60,
                      headers={**lms.auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})})


def _raw_request(lms, request: bytes) -> tuple[int, dict]:
    """One request written on a socket, byte for byte (httpx refuses control characters in headers)."""
    url = urlsplit(lms.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else {}


def _imports(lms) -> int:
    return lms.db().execute("SELECT count(*) FROM imports").fetchone()[0]


# ---- item 1: the upload is streamed to disk, capped, and read with flat memory ----

@pytest.fixture(scope="module")
def small_cap():
    with start_sandbox(dataset(), extra_args=("--max-upload", "64K")) as lms:
        yield lms


def test_a_file_over_the_upload_limit_is_413_naming_the_limit_and_imports_nothing(small_cap):
    lms = small_cap
    big = b"external_user_id,complete\n" + b"u1,1\n" * 20_000  # 100 KB against a 64 KiB limit
    r = lms.submit(big, course="C-FIXED", key="too-big-1")
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "file_too_large" and r.json()["limit_bytes"] == 64 * 1024
    assert "the limit is 64 KiB" in r.json()["message"] and "Nothing was imported" in r.json()["message"]
    # Sent without a Content-Length (chunked), so the server only learns the size while reading.
    body = _multipart("big.csv", big)
    r = httpx.post(lms.url("/imports"), content=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                   headers={**lms.auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, timeout=60)
    assert (r.status_code, r.json()["error"]) == (413, "file_too_large")
    assert _imports(lms) == 0 and lms.db().execute("SELECT count(*) FROM import_files").fetchone()[0] == 0
    assert not lms.client().get("/locks/course").json()["locked"]
    # Just under the limit is an ordinary import; the idempotency key refused above is still free.
    fits = b"external_user_id,complete\n" + b"u1,1\n" * 10_000
    r = lms.submit(fits, course="C-FIXED", key="too-big-1")
    assert r.status_code == 201, r.text
    assert lms.wait_import(r.json()["id"])["rows_total"] == 10_000


def test_the_sandbox_command_refuses_a_limit_that_is_not_a_size():
    with pytest.raises(RuntimeError, match="not a size"):
        start_sandbox(dataset(), extra_args=("--max-upload", "lots"))


def test_a_file_of_many_chunks_is_stored_read_and_served_back_byte_for_byte():
    # 3 MB (over the reader's 1 MiB chunks), CRLF rows, a quoted cell with a line break, a BOM, a
    # hang row near the end: the stored file, row numbers, lines and /remaining must be exact.
    head = b"\xef\xbb\xbfexternal_user_id,first_name,complete\r\n"
    pad = "x" * 60
    rows = [f"u{n % 5 + 1},\"Name\r\n{n}\",1\r\n".encode() if n % 1000 == 0 else f"u{n % 5 + 1},{pad}{n},0\r\n".encode()
            for n in range(1, 40_001)]
    hang_row = 39_500
    rows[hang_row - 1] = b"u1,Jos\xc2\xa0Bo,1\r\n"  # NBSP: in the hang trigger set
    content = head + b"".join(rows)
    with start_sandbox(dataset(), rows_per_second=None) as lms:
        r = lms.submit(content, course="C-VAR", file_name="big.csv")
        assert r.status_code == 201, r.text
        imp = r.json()
        assert (imp["rows_total"], imp["file_size"]) == (40_000, len(content)) and len(content) > 2 << 20
        assert imp["file_sha256"] == hashlib.sha256(content).hexdigest()
        lms.wait_rows(imp["id"], hang_row - 1, timeout=120)
        with lms.client() as client:
            client.timeout = 60
            assert client.get(f"/imports/{imp['id']}/file").content == content
            stalled = client.get(f"/imports/{imp['id']}").json()
            assert (stalled["state"], stalled["rows_processed"]) == ("running", hang_row - 1)
            last = client.get(f"/imports/{imp['id']}/rows", params={"offset": hang_row - 2}).json()["items"]
            assert [(r["row"], r["line"]) for r in last] == [(hang_row - 1, hang_row - 1 + 1 + (hang_row - 1) // 1000)]
            remaining = client.get(f"/imports/{imp['id']}/remaining")
            assert remaining.headers["x-first-row"] == str(hang_row)
            assert remaining.content == head + b"".join(rows[hang_row - 1:])
            client.post("/locks/course/unlock", json={"import_id": imp["id"]}).raise_for_status()
        lms.restart()  # the server no longer knows where the import stopped: it reads the file from the top
        with lms.client() as client:
            after = client.get(f"/imports/{imp['id']}/remaining")
            assert (after.headers["x-first-row"], after.content) == (str(hang_row), remaining.content)
        stored = lms.db().execute("SELECT file_bytes FROM import_files WHERE import_id = ?", (imp["id"],)).fetchone()[0]
        assert stored == content


def test_a_row_longer_than_the_lms_reads_fails_alone_and_one_with_a_trigger_still_hangs(sandbox):
    # A 5 MB row is never held whole: it fails as a row, the next row imports.
    long_row = b"u1," + b"a" * 5_000_000 + b",1\n"
    done = sandbox.wait_import(sandbox.submit(b"external_user_id,first_name,complete\n" + long_row + b"u2,Bo,1\n",
                                              course="C-FIXED").json()["id"])
    assert (done["state"], done["rows_total"], done["rows_failed"]) == ("completed_with_errors", 2, 1)
    rows = sandbox.client().get(f"/imports/{done['id']}/rows").json()["items"]
    assert [r["status"] for r in rows] == ["failed", "imported"] and "longer than 4 MiB" in rows[0]["message"]
    # The same with a zero-width space at its end: found while scanning, the import stops there (behaviour 8).
    hung = sandbox.submit(b"external_user_id,first_name,complete\nu3,Al,1\nu4," + b"b" * 5_000_000 + "\u200b,1\n".encode()
                          + b"u5,Bo,1\n", course="C-FIXED").json()
    sandbox.wait_rows(hung["id"], 1)
    with pytest.raises(AssertionError):
        sandbox.wait_rows(hung["id"], 2, timeout=1.5)
    assert sandbox.get_import(hung["id"])["state"] == "running"


# ---- item 2: the LMS keeps a base name, never a path ----

@pytest.mark.parametrize(("sent", "kept"), [
    ("../../etc/passwd", "passwd"),
    ("x/../..", "upload.csv"),
    ("..", "upload.csv"),
    ("C:\\Users\\pat\\grades.csv", "grades.csv"),
    ("/tmp/a\x01b.csv", "ab.csv"),
    ("n" * 400 + ".csv", "n" * 251 + ".csv"),
    ("é" * 200, "é" * 127),  # 255 bytes, never half a character
], ids=["dotdot-path", "ends-in-dotdot", "dotdot", "windows-path", "control-char", "long-ascii", "long-utf8"])
def test_the_lms_keeps_only_a_base_name_of_the_uploaded_file(sandbox, sent, kept):
    r = _post_import(sandbox, _multipart(sent, b"external_user_id,complete\nu1,0\n"))
    assert r.status_code == 201, r.text
    assert r.json()["file_name"] == kept and len(kept.encode()) <= 255
    assert sandbox.db().execute("SELECT file_name FROM imports WHERE id = ?", (r.json()["id"],)).fetchone()[0] == kept
    sandbox.wait_import(r.json()["id"])


# ---- item 5: no 500s ----

def test_deeply_nested_json_is_refused_with_a_sentence(sandbox):
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/users/lookup", "/users", "/courses/lookup", "/locks/course/unlock"):
        r = httpx.post(sandbox.url(path), content=f'{{"emails": {deep}}}', headers=sandbox.auth(), timeout=30)
        assert (r.status_code, r.json()["error"]) == (422, "invalid"), (path, r.text)
        assert "nested too deeply" in r.json()["message"]


def test_a_lone_surrogate_in_a_new_user_is_refused_and_no_user_is_made(sandbox):
    users = sandbox.db().execute("SELECT count(*) FROM users").fetchone()[0]
    for body in ('{"email": "pat\\ud800@example.org"}', '{"first_name": "\\udfff", "email": "lone@example.org"}',
                 '{"\\ud800": 1, "email": "key@example.org"}'):
        r = httpx.post(sandbox.url("/users"), content=body, headers=sandbox.auth())
        assert (r.status_code, r.json()["error"]) == (422, "invalid"), r.text
        assert "lone surrogate" in r.json()["message"]
    r = httpx.post(sandbox.url("/users/lookup"), content='{"emails": ["\\ud83d"]}', headers=sandbox.auth())
    assert r.status_code == 422
    assert sandbox.db().execute("SELECT count(*) FROM users").fetchone()[0] == users


def test_a_nul_character_in_a_new_users_email_is_refused_and_no_user_is_made(sandbox):
    users = sandbox.db().execute("SELECT count(*) FROM users").fetchone()[0]
    for email in ("pat\x00@example.org", "\x00", "pat@example.org\x00"):
        r = httpx.post(sandbox.url("/users"), json={"external_user_id": "nul-1", "email": email}, headers=sandbox.auth())
        assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "invalid", "email"), r.text
        assert "NUL character" in r.json()["message"] and "\x00" not in r.json()["message"]
    assert sandbox.db().execute("SELECT count(*) FROM users").fetchone()[0] == users
    assert sandbox.db().execute("SELECT count(*) FROM users WHERE external_user_id = 'nul-1'").fetchone()[0] == 0


def test_ids_are_ascii_digits_only(sandbox):
    imp = sandbox.submit(b"external_user_id,complete\nu1,0\n", course="C-FIXED").json()
    assert imp["id"] == 1
    for raw in ("\u0661", "\u00b9", "\uff11", "\u0967", "1\u0661"):  # Arabic-Indic 1, superscript 1, fullwidth 1, Devanagari 1
        for tail in ("", "/rows", "/remaining", "/file"):
            r = httpx.get(sandbox.url(f"/imports/{raw}{tail}"), headers=sandbox.auth())
            assert (r.status_code, r.json()["error"]) == (404, "not_found"), (raw, tail, r.text)
        assert httpx.get(sandbox.url(f"/courses/{raw}"), headers=sandbox.auth()).status_code == 404
    for query in ({"limit": "\u0661\u0660"}, {"offset": "\u00b9"}, {"limit": "1_0"}):
        r = httpx.get(sandbox.url("/imports"), params=query, headers=sandbox.auth())
        assert (r.status_code, r.json()["error"]) == (422, "invalid"), (query, r.text)


@pytest.mark.parametrize("key", [b"k\x01ey", b"k\tey", b"k\x7fey", b"k\x85ey", b"k" * 201],
                         ids=["SOH", "tab", "DEL", "C1-NEL", "201-chars"])
def test_an_idempotency_key_with_control_characters_or_too_long_is_400_and_imports_nothing(sandbox, key):
    body = _multipart("a.csv", b"external_user_id,complete\nu1,0\n")
    url = urlsplit(sandbox.url("/imports"))
    request = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {sandbox.admin_token}\r\n"
               f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\nIdempotency-Key: ").encode() + key + b"\r\n\r\n" + body
    status, answer = _raw_request(sandbox, request)
    assert (status, answer.get("error"), answer.get("field")) == (400, "invalid_header", "Idempotency-Key"), answer
    assert "printable ASCII" in answer["message"]
    assert _imports(sandbox) == 0
