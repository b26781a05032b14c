"""RELIABILITY.md faults 1-13 against the real reference LMS (`--faults`): whatever the network
does, the server's database ends up with exactly one import of the file (or none, and the admin
was told so), and no row of it is lost."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import uuid
from email.utils import formatdate

import httpx
import pytest

from importconsole.lms.client import LmsClient, RetryPolicy
from importconsole.lms.errors import (
    CertificateInvalid,
    Forbidden,
    IdempotencyMismatch,
    ImporterLocked,
    LmsError,
    Unauthorized,
    Unreachable,
)
from helpers.sandbox import ADMIN_TOKEN, COURSE_ADMIN_TOKEN, dataset, start_sandbox, wait_for


@pytest.fixture(scope="module")
def lms():
    with start_sandbox(dataset(), rows_per_second=None, faults=True) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(lms, monkeypatch, tmp_path):
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    yield
    httpx.delete(lms.url("/_faults"), headers=lms.auth(), timeout=10)


class Sleeps:
    """Injected into RetryPolicy: records each backoff, waits only `real` seconds of it."""

    def __init__(self, real: float = 0.0):
        self.delays: list[float] = []
        self.real = real

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, self.real))


def client(lms, sleeps: Sleeps | None = None, token: str = ADMIN_TOKEN, **kw) -> LmsClient:
    policy = RetryPolicy(attempts=6, base=0.1, cap=0.4, retry_after_cap=5, sleep=sleeps or Sleeps(), random=lambda: 1.0)
    return LmsClient(lms.base_url, token, retry=policy, **kw)


def fault(lms, kind: str, **kw) -> None:
    r = httpx.post(lms.url("/_faults"), json={"kind": kind, **kw}, headers=lms.auth(), timeout=10)
    assert r.status_code < 300, r.text


def import_file(tmp_path, rows: int = 3):
    """A small course-level file, unique per test (its own held user), so its hash names it."""
    tag = uuid.uuid4().hex[:8]
    lines = ["external_user_id,external_email,complete"]
    lines += [f"u{n},,0" for n in range(1, rows)]
    lines += [f",new-{tag}@example.org,0"]
    path = tmp_path / f"q3-{tag}.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path, rows


def imports_of(lms, path):
    import hashlib

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return lms.db().execute("SELECT * FROM imports WHERE file_sha256 = ?", (sha,)).fetchall()


def assert_exactly_one_and_no_row_lost(lms, path, rows, import_id):
    found = imports_of(lms, path)
    assert [r["id"] for r in found] == [import_id], "exactly one import of the file"
    done = lms.wait_import(import_id)
    assert done["rows_total"] == rows and done["rows_processed"] == rows
    numbers = [r[0] for r in lms.db().execute("SELECT row FROM import_rows WHERE import_id = ? ORDER BY row", (import_id,))]
    assert numbers == list(range(1, rows + 1)), "every row has its outcome"


# ---- 1. connect refused -----------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_1_connect_refused_retries_then_says_it_could_not_reach(tmp_path):
    path, _ = import_file(tmp_path)
    sleeps = Sleeps()
    policy = RetryPolicy(attempts=4, base=0.1, cap=0.4, sleep=sleeps, random=lambda: 1.0)
    async with LmsClient(f"http://127.0.0.1:{_closed_port()}", ADMIN_TOKEN, retry=policy) as c:
        with pytest.raises(Unreachable) as err:
            await c.submit_import(path, importer="course", course_external_id="C-VAR")
    assert "Could not reach the LMS at 127.0.0.1" in str(err.value)
    assert "Nothing was sent" in str(err.value)
    assert sleeps.delays == [0.1, 0.2, 0.4]  # exponential, capped


@pytest.fixture
def full_backlog():
    """A port whose listen queue is full: the kernel drops new SYNs, so connecting times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(5):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    yield port
    for s in fillers + [server]:
        s.close()


async def test_1_connect_timeout_retries_then_says_it_could_not_reach(tmp_path, full_backlog):
    path, _ = import_file(tmp_path)
    sleeps = Sleeps()
    policy = RetryPolicy(attempts=3, base=0.05, cap=0.1, sleep=sleeps, random=lambda: 1.0)
    timeout = httpx.Timeout(2.0, connect=0.2)
    async with LmsClient(f"http://127.0.0.1:{full_backlog}", ADMIN_TOKEN, retry=policy, timeout=timeout) as c:
        with pytest.raises(Unreachable) as err:
            await c.submit_import(path, importer="course", course_external_id="C-VAR")
    assert "did not answer in time" in str(err.value) and "Nothing was sent" in str(err.value)
    assert len(sleeps.delays) == 2


# ---- 2, 3. lost response, read timeout --------------------------------------------------------

async def test_2_connection_dropped_after_upload_asks_the_server_and_finds_the_one_import(lms, tmp_path):
    path, rows = import_file(tmp_path)
    fault(lms, "drop_after_body")
    async with client(lms) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert receipt.reconciled and not receipt.created
    assert imports_of(lms, path)[0]["idempotency_key"] == receipt.idempotency_key
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


async def test_3_read_timeout_retries_with_the_same_key(lms, tmp_path):
    path, rows = import_file(tmp_path)
    fault(lms, "slow", seconds=1.0)
    witness = KeyWitness()
    async with client(lms, Sleeps(real=0.4), upload_timeout=0.3, transport=witness) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert receipt.attempts >= 2 and len(witness.keys) >= 2 and set(witness.keys) == {receipt.idempotency_key}
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


# ---- 4. 500 ------------------------------------------------------------------------------------

async def test_4_500_before_handling_finds_nothing_then_sends_the_same_key_once(lms, tmp_path):
    path, rows = import_file(tmp_path)
    fault(lms, "error_500_before")
    async with client(lms) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert receipt.created
    assert any("held no import" in n for n in receipt.notes)
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


async def test_4_500_after_handling_finds_the_import_and_sends_nothing_new(lms, tmp_path):
    path, rows = import_file(tmp_path)
    fault(lms, "error_500_after")
    async with client(lms) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert receipt.reconciled and not receipt.created and receipt.attempts == 1
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


async def test_4_persistent_500_tells_the_admin_no_import_exists(lms, tmp_path):
    path, _ = import_file(tmp_path)
    fault(lms, "error_500_before", times=50)
    async with client(lms) as c:
        with pytest.raises(LmsError) as err:
            await c.submit_import(path, importer="course", course_external_id="C-VAR")
    assert "No import was created" in str(err.value)
    assert imports_of(lms, path) == []


# ---- 5, 6. 502/503/504 and 429 -------------------------------------------------------------------

class KeyWitness(httpx.AsyncHTTPTransport):
    """Forwards to the real LMS; notes the Idempotency-Key of every POST /imports that leaves."""

    def __init__(self):
        super().__init__()
        self.keys: list[str] = []

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/imports"):
            self.keys.append(request.headers.get("Idempotency-Key"))
        return await super().handle_async_request(request)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_5_gateway_errors_back_off_with_the_same_key(lms, tmp_path, status):
    path, rows = import_file(tmp_path)
    fault(lms, "status", status=status, times=2)
    sleeps = Sleeps()
    witness = KeyWitness()
    async with client(lms, sleeps, transport=witness) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert sleeps.delays == [0.1, 0.2]
    assert receipt.attempts == 3 and receipt.created
    assert witness.keys == [receipt.idempotency_key] * 3
    assert imports_of(lms, path)[0]["idempotency_key"] == receipt.idempotency_key
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


@pytest.mark.parametrize("retry_after,expected", [
    ("2", lambda d: d == 2.0),
    ("9999", lambda d: d == 5.0),  # clamped to retry_after_cap
    ("garbage", lambda d: d == 0.1),  # falls back to backoff
    ("DATE+3", lambda d: 1.5 <= d <= 3.0),
])
async def test_6_429_honours_retry_after(lms, tmp_path, retry_after, expected):
    path, rows = import_file(tmp_path)
    if retry_after == "DATE+3":
        import time

        retry_after = formatdate(time.time() + 3, usegmt=True)
    fault(lms, "status", status=429, retry_after=retry_after)
    sleeps = Sleeps()
    async with client(lms, sleeps) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert len(sleeps.delays) == 1 and expected(sleeps.delays[0]), sleeps.delays
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


async def test_6_reads_also_wait_for_retry_after(lms):
    fault(lms, "status", status=429, retry_after="1", path_prefix="/api/v1/me", method="GET")
    sleeps = Sleeps()
    async with client(lms, sleeps) as c:
        me = await c.me()
    assert me.username == "admin" and sleeps.delays == [1.0]


# ---- 7, 8. idempotency conflicts -----------------------------------------------------------------

async def test_7_same_key_in_flight_waits_and_gets_the_same_import(lms, tmp_path):
    path, rows = import_file(tmp_path)
    key = f"ic-{uuid.uuid4()}"
    fault(lms, "slow", seconds=1.0)
    first = asyncio.create_task(asyncio.to_thread(
        lambda: lms.submit(path.read_bytes(), course="C-VAR", key=key, file_name=path.name)))
    await asyncio.sleep(0.3)  # the first request is now being handled
    sleeps = Sleeps(real=0.4)
    async with client(lms, sleeps) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR", idempotency_key=key)
    assert (await first).status_code == 201
    assert not receipt.created and len(sleeps.delays) >= 1
    assert any("still handling" in n for n in receipt.notes)
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


async def test_8_key_reused_with_another_file_stops_as_a_bug_and_never_retries(lms, tmp_path):
    first, rows = import_file(tmp_path)
    second, _ = import_file(tmp_path)
    key = f"ic-{uuid.uuid4()}"
    r = lms.submit(first.read_bytes(), course="C-VAR", key=key, file_name=first.name)
    lms.wait_import(r.json()["id"])
    sleeps = Sleeps()
    async with client(lms, sleeps) as c:
        with pytest.raises(IdempotencyMismatch) as err:
            await c.submit_import(second, importer="course", course_external_id="C-VAR", idempotency_key=key)
    assert "This is a bug" in str(err.value) and "report it" in str(err.value)
    assert sleeps.delays == []
    assert imports_of(lms, second) == []
    assert_exactly_one_and_no_row_lost(lms, first, rows, r.json()["id"])


# ---- 10. unreadable 200 ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["truncated_body", "non_json"])
async def test_10_unreadable_200_is_an_unknown_outcome_settled_by_asking(lms, tmp_path, kind):
    path, rows = import_file(tmp_path)
    fault(lms, kind)
    async with client(lms) as c:
        receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
    assert receipt.reconciled and receipt.attempts == 1
    assert_exactly_one_and_no_row_lost(lms, path, rows, receipt.import_.id)


# ---- 11. 401 / 403, and 423 ---------------------------------------------------------------------

async def test_11_401_says_how_to_log_in_again(lms, tmp_path):
    path, _ = import_file(tmp_path)
    sleeps = Sleeps()
    async with client(lms, sleeps, token="expired-token-0000", profile="prod") as c:
        with pytest.raises(Unauthorized) as err:
            await c.submit_import(path, importer="course", course_external_id="C-VAR")
    assert "importconsole login --profile prod" in str(err.value)
    assert "expired-token-0000" not in str(err.value)
    assert sleeps.delays == [] and imports_of(lms, path) == []


async def test_11_403_names_the_role_needed(lms, tmp_path):
    path, _ = import_file(tmp_path)
    async with client(lms, token=COURSE_ADMIN_TOKEN) as c:
        with pytest.raises(Forbidden) as err:
            await c.submit_import(path, importer="global")
    assert "site_admin" in str(err.value) and err.value.role_needed == "site_admin"
    assert imports_of(lms, path) == []


async def test_423_names_the_import_holding_the_lock_and_who(lms, tmp_path):
    hung = tmp_path / "hung.csv"
    hung.write_bytes(b"external_user_id ,complete\nu1,1\nu2,1\n")  # extra space in a header: the LMS hangs
    r = lms.submit(hung.read_bytes(), course="C-VAR", key=f"hang-{uuid.uuid4()}", file_name="hung.csv")
    holder = r.json()["id"]
    path, _ = import_file(tmp_path)
    try:
        wait_for(lambda: lms.get_import(holder)["state"] == "running", message="the hung import to run")
        async with client(lms) as c:
            with pytest.raises(ImporterLocked) as err:
                await c.submit_import(path, importer="course", course_external_id="C-VAR")
        assert f"locked by import {holder}" in str(err.value) and "admin" in str(err.value)
        assert err.value.lock.import_id == holder
        assert imports_of(lms, path) == []
    finally:
        httpx.post(lms.url("/locks/course/unlock"), json={"import_id": holder}, headers=lms.auth(), timeout=10)


# ---- 12. TLS --------------------------------------------------------------------------------------

def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def https_lms(tmp_path):
    """A tiny HTTPS server with a self-signed certificate answering /api/v1/me."""
    cert, key = _self_signed(tmp_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"username": "admin", "role": "site_admin", "display_name": "A"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


async def test_12_untrusted_certificate_is_refused_and_a_ca_bundle_is_the_way(https_lms):
    url, cert = https_lms
    sleeps = Sleeps()
    async with client_for(url, sleeps) as c:
        with pytest.raises(CertificateInvalid) as err:
            await c.me()
    assert "not trusted" in str(err.value) and "ca_bundle" in str(err.value) and "cannot be turned off" in str(err.value)
    assert sleeps.delays == []  # no point retrying a certificate
    async with client_for(url, Sleeps(), ca_bundle=cert) as c:
        assert (await c.me()).username == "admin"


def client_for(url, sleeps, **kw):
    return LmsClient(url, ADMIN_TOKEN, retry=RetryPolicy(attempts=3, sleep=sleeps), **kw)


def test_12_there_is_no_way_to_turn_verification_off():
    import inspect

    import importconsole.lms.client as client
    import importconsole.lms.transport as transport
    import importconsole.lms.upload as upload

    source = "".join(inspect.getsource(module) for module in (client, transport, upload))
    assert "ssl.create_default_context(" in source  # the TLS settings are among the sources read
    assert "verify=False" not in source and "CERT_NONE" not in source and "check_hostname = False" not in source
    assert "verify" not in inspect.signature(LmsClient).parameters


# ---- 13. the event stream ---------------------------------------------------------------------------

async def test_13_events_arrive_typed_and_a_dropped_stream_is_a_sentence(tmp_path):
    from importconsole.lms.models import Import, Lock

    with start_sandbox(dataset(), rows_per_second=None) as server:
        seen = []
        async with LmsClient(server.base_url, ADMIN_TOKEN) as c:
            async def follow():
                async for event in c.events(read_timeout=5):
                    seen.append(event)
            task = asyncio.create_task(follow())
            await asyncio.to_thread(wait_for, lambda: any(isinstance(e.data, Lock) for e in seen), 10)
            r = await asyncio.to_thread(server.submit, b"external_user_id,complete\nu1,0\n", course="C-VAR")
            await asyncio.to_thread(wait_for, lambda: any(isinstance(e.data, Import) and e.data.id == r.json()["id"] for e in seen), 10)
            server.kill()
            with pytest.raises(LmsError) as err:
                await asyncio.wait_for(task, 10)
        assert "Could not reach the LMS" in str(err.value)


async def test_3_a_read_that_times_out_is_retried(lms):
    fault(lms, "slow", seconds=1.0, path_prefix="/api/v1/locks", method="GET")
    sleeps = Sleeps()
    async with client(lms, sleeps, timeout=0.3) as c:
        locks = await c.locks()
    assert {lock.importer for lock in locks} == {"course", "global"} and len(sleeps.delays) == 1


async def test_1_connect_refused_until_the_lms_is_back_then_exactly_one_import(tmp_path):
    """The LMS is down when the upload starts and comes back during the backoff: retried with the
    same key, one import, every row."""
    with start_sandbox(dataset(), rows_per_second=None) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        server.stop()
        path, rows = import_file(tmp_path)

        class BringBack(Sleeps):
            async def __call__(self, seconds):
                self.delays.append(seconds)
                if len(self.delays) == 1:
                    await asyncio.to_thread(server.start, port, read_tokens=False)

        sleeps = BringBack()
        async with LmsClient(server.base_url, ADMIN_TOKEN, retry=RetryPolicy(attempts=4, sleep=sleeps)) as c:
            receipt = await c.submit_import_detailed(path, importer="course", course_external_id="C-VAR")
        assert receipt.created and receipt.attempts == 2 and "could not connect" in receipt.notes
        assert_exactly_one_and_no_row_lost(server, path, rows, receipt.import_.id)
