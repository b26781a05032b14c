"""`importconsole sandbox` as an admin or a test runs it: flags, the listening line, clean stops, bad datasets."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime

import httpx
import pytest

from helpers.sandbox import dataset, start_sandbox

CMD = [sys.executable, "-m", "importconsole", "sandbox"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_port_0_prints_one_listening_line_then_the_demo_tokens_and_sigterm_stops_it(tmp_path):
    proc = _start("--port", "0", "--db", str(tmp_path / "lms.sqlite3"), "--seed", "demo")
    try:
        first = proc.stdout.readline()
        assert re.fullmatch(r"importconsole sandbox listening on http://127\.0\.0\.1:\d+\n", first), first
        assert proc.stdout.readline() == "token site_admin: demo-admin-token\n"
        assert proc.stdout.readline() == "token course_admin: demo-course-admin-token\n"
        base = first.split()[-1]
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": "Bearer demo-course-admin-token"})
        assert me.json()["role"] == "course_admin"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_toml_dataset_seeds_a_new_database_and_its_tokens_are_not_printed(tmp_path):
    seed = tmp_path / "lms.toml"
    seed.write_text('[[credit_types]]\nmachine_name = "ama"\nreports_to = ["pars"]\n\n'
                    '[[courses]]\nexternal_id = "T-1"\ncredits = [{credit_type = "ama", max = 2.0}]\n\n'
                    '[[tokens]]\ntoken = "secret-t"\nrole = "site_admin"\n', encoding="utf-8")
    proc = _start("--port", "0", "--db", str(tmp_path / "t.sqlite3"), "--seed", str(seed), "--rows-per-second", "max")
    try:
        base = proc.stdout.readline().split()[-1]
        course = httpx.get(f"{base}/api/v1/courses", params={"external_id": "T-1"},
                           headers={"Authorization": "Bearer secret-t"}).json()["items"][0]
        assert course["credits"][0]["max"] == 2.0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "secret-t" not in proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_broken_dataset_is_named_without_a_traceback(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(dataset(courses=[{"external_id": "X", "credits": [{"credit_type": "nope", "max": 1}]}])))
    result = subprocess.run([*CMD, "--port", "0", "--seed", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "broken.json" in result.stderr and "courses[0].credits[0]" in result.stderr and "nope" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run([*CMD, "--port", "0", "--seed", str(tmp_path / "missing.json")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "missing.json" in result.stderr and "Traceback" not in result.stderr


def test_a_file_that_is_not_an_lms_database_is_refused_plainly(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just words " * 100)
    for db in (notes, tmp_path / "no" / "such" / "dir" / "lms.sqlite3"):
        result = subprocess.run([*CMD, "--port", "0", "--db", str(db)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and str(db) in result.stderr and "Traceback" not in result.stderr


def test_bad_flags_are_usage_errors():
    for args in (["--rows-per-second", "fast"], ["--port", "70000"], ["--port", "http"]):
        result = subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
    help_text = subprocess.run([*CMD, "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag in ("--host", "--port", "--db", "--seed", "--rows-per-second", "--faults"):
        assert flag in help_text


def test_a_speed_that_is_not_a_number_is_refused_and_infinity_means_unthrottled():
    """The adversarial run of issue 12: `--rows-per-second nan` started and said 'processing nan rows/s'."""
    for text in ("nan", "NaN", "-inf"):
        result = subprocess.run([*CMD, "--port", "0", f"--rows-per-second={text}"], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 2, text
        assert "rows per second" in result.stderr and "Traceback" not in result.stderr
    proc = _start("--port", "0", "--rows-per-second", "inf")
    try:
        assert "listening on" in proc.stdout.readline()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "unthrottled" in out + err and "inf" not in out + err


def test_without_faults_the_fault_switch_does_not_exist(sandbox):
    r = httpx.post(sandbox.url("/_faults"), json={"kind": "status", "status": 503})
    assert r.status_code == 404


def test_rows_per_second_sets_the_processing_speed():
    with start_sandbox(dataset(), rows_per_second=20) as lms:
        body = "external_user_id,complete\n" + "".join(f"u{n % 5 + 1},0\n" for n in range(10))
        imp = lms.wait_import(lms.submit(body.encode(), course="C-FIXED").json()["id"])
        took = (datetime.fromisoformat(imp["finished_at"][:-1]) - datetime.fromisoformat(imp["started_at"][:-1]))
        assert 0.45 <= took.total_seconds() <= 3.0  # 10 rows at 20 rows/s: about half a second


def test_a_busy_port_is_said_plainly():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*CMD, "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    assert "is the port in use" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("bad, names", [
    ({"courses": [{"external_id": "A"}, {"external_id": "A"}]}, ["courses[1]", "external_id", "'A'"]),
    ({"users": [{"external_user_id": "u1"}, {"external_user_id": "u1"}]}, ["users[1]", "external_user_id"]),
    ({"tokens": [{"token": "t", "role": "site_admin"}, {"token": "t", "role": "course_admin"}]}, ["tokens[1]", "token"]),
    ({"courses": [{"external_id": "A", "required_objects": "three"}]}, ["courses[0].required_objects", "'three'"]),
    ({"credit_types": [{"machine_name": "ama"}], "courses": [{"external_id": "A", "credits": [
        {"credit_type": "ama", "max": "x"}]}]}, ["courses[0].credits[0].max", "'x'"]),
    ({"credit_types": [{"machine_name": "ama", "reports_to": "pars"}]}, ["credit_types[0].reports_to", "list"]),
    ({"users": ["u1"]}, ["users[0]", "object"]),
])
def test_a_bad_dataset_entry_is_named_and_the_database_is_left_for_a_good_seed(tmp_path, bad, names):
    bad_file, db = tmp_path / "bad.json", tmp_path / "lms.sqlite3"
    bad_file.write_text(json.dumps({"tokens": [{"token": "bad-t", "role": "site_admin"}], **bad}))
    result = subprocess.run([*CMD, "--port", "0", "--db", str(db), "--seed", str(bad_file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "unexpected problem" not in result.stderr
    assert "bad.json" in result.stderr and all(n in result.stderr for n in names), result.stderr
    assert "cannot use this file as the LMS database" not in result.stderr  # the dataset is at fault, not the file
    if "users" in bad or "tokens" in bad:
        return  # the second start below (1 s) for the others: a refusal before and one during the inserts
    # Nothing half-seeded stays behind: the same --db then takes a good dataset (not an empty LMS).
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dataset()))
    proc = _start("--port", "0", "--db", str(db), "--seed", str(good))
    try:
        base = proc.stdout.readline().split()[-1]
        assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": "Bearer admin-token"}).status_code == 200
    finally:
        proc.kill()
        proc.wait()


def test_a_restart_on_the_same_db_says_the_database_was_reused_and_the_seed_not_loaded(tmp_path):
    db = tmp_path / "lms.sqlite3"
    for round_ in (1, 2):
        proc = _start("--port", "0", "--db", str(db), "--seed", "demo")
        try:
            proc.stdout.readline()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            said = proc.stderr.read()
        finally:
            proc.kill()
            proc.wait()
        assert ("reused as it was" in said) == (round_ == 2), said


def test_max_upload_is_said_at_start_and_a_bad_size_is_refused_with_a_sentence(tmp_path):
    proc = _start("--port", "0", "--db", str(tmp_path / "lms.sqlite3"), "--max-upload", "3M")
    try:
        assert proc.stdout.readline().startswith("importconsole sandbox listening on ")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "uploads up to 3 MiB" in err
    result = subprocess.run([*CMD, "--port", "0", "--max-upload", "0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "is not a size" in result.stderr and "Traceback" not in result.stderr
