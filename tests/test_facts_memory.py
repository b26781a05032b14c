"""Online validation keeps what the LMS said about each learner with bounded memory (issue 12): past
`lms.fact_store.IN_MEMORY` answers they go to a temporary file, and the findings, the look-ups per learner
and the answers are the same as when everything fits in memory. Peak RSS figures: bench/bench_online.py."""

from __future__ import annotations

import asyncio
import csv
import gc

import httpx
import pytest

from importconsole.importfile.validate import validate
from importconsole.lms.client import LmsClient
from importconsole.lms.ethosce import RestwsClient, RestwsFacts
from importconsole.lms.facts import ApiFacts
from helpers.sandbox import ADMIN_TOKEN, dataset, start_sandbox

LEARNERS = 3000


@pytest.fixture(scope="module")
def lms():
    users = [{"external_user_id": f"L{n:05d}", "email": f"l{n}@example.org"} for n in range(LEARNERS)]
    enrollments = [{"external_user_id": f"L{n:05d}", "course_external_id": "C-VAR",
                    "status": "complete" if n % 21 == 0 else "incomplete",
                    "credits": [{"credit_type": "ama", "amount": 0.5 + n % 3 * 0.25, "source": "import"}]}
                   for n in range(0, LEARNERS, 7)]
    with start_sandbox(dataset(users=users, enrollments=enrollments)) as server:
        yield server


def learners_file(tmp_path, rows: int, learners: int = 4000):
    """Rows of 4,000 learners (1,000 unknown to the LMS), each again 4,000 rows later: a learner's second
    row comes several look-ups after the first, so the answer must still be known then. A learner in five
    is named by e-mail only."""
    path = tmp_path / "learners.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_user_id", "external_email", "complete", "date_completed", "credit_type", "credits"])
        for i in range(rows):
            n = i % learners
            w.writerow([f"L{n:05d}" if n % 5 else "", f"l{n}@example.org", "1", "2026-05-01", "ama", "1.25"])
    return path


async def validate_with(lms, path, **kwargs):
    async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
        facts = ApiFacts(client, asyncio.get_running_loop(), **kwargs)
        first = await asyncio.to_thread(validate, path, course_external_id="C-VAR", facts=facts)
        calls = facts.calls
        again = await asyncio.to_thread(validate, path, course_external_id="C-VAR", facts=facts)  # validate, then submit
        return first, again, calls, facts


async def test_answers_past_the_memory_bound_give_the_same_findings_and_are_asked_once(lms, tmp_path):
    path = learners_file(tmp_path, 8000)
    in_memory, _, calls_in_memory, kept = await validate_with(lms, path)
    on_disk, again, calls_on_disk, spilled = await validate_with(lms, path, in_memory=100)
    assert not kept._users.on_disk and spilled._users.on_disk and spilled._enrollments.on_disk
    assert len(spilled._users) == len(spilled._enrollments) == 4000  # one answer per learner (and course)
    assert on_disk.as_dict() == in_memory.as_dict() == again.as_dict()
    by_rule = on_disk.summary["by_rule"]
    assert by_rule["would-update-existing"] == 2 * 143  # L00000, L00021, ... complete C-VAR, on two rows each
    assert on_disk.award_lines()
    # Every learner asked once: the first 4,000 rows, 1,000 at a time, a user and an enrollment look-up each,
    # plus the course and the credit types; their second rows ask nothing, nor does the second validation.
    assert calls_on_disk == calls_in_memory == 2 + 4 * 2
    assert spilled.calls == calls_on_disk


async def test_look_ups_leave_no_garbage_while_validation_runs_without_the_collector(lms, tmp_path):
    """Validation turns the cyclic collector off; each HTTP answer left reference cycles that then piled up
    for the whole run (at 32 MB: 75 of the 200 MiB peak)."""
    path = learners_file(tmp_path, 20000, learners=20000)
    seen: list[int] = []

    def progress(done, total):
        if not gc.isenabled():  # only while validation runs
            seen.append(sum(isinstance(o, httpx.Response) for o in gc.get_objects()))

    async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
        facts = ApiFacts(client, asyncio.get_running_loop())
        report = await asyncio.to_thread(validate, path, course_external_id="C-VAR", facts=facts, progress=progress)
    assert report.rows == 20000 and facts.calls >= 2 + 20 * 2 and seen
    assert max(seen) <= 2, f"HTTP answers still held during validation: {seen}"


def test_restws_answers_past_the_memory_bound_give_the_same_findings(feeds_kit, tmp_path):
    path = tmp_path / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_user_id", "external_email", "external_course_id", "complete", "date_completed",
                    "credit_type", "credits"])
        for i in range(3000):
            n = 1 + i % 40
            w.writerow([f"U{n:05d}" if n % 3 else "", f"user{n}@example.com", "C-100", "1", "2024-05-01", "ama",
                        "1.75" if i == 7 else "1.5"])

    async def run(**kwargs):
        async with RestwsClient(feeds_kit.base_url, feeds_kit.restws_user, feeds_kit.restws_password) as ws:
            facts = RestwsFacts(ws, asyncio.get_running_loop(), **kwargs)
            report = await asyncio.to_thread(validate, path, importer="global", facts=facts)
            return report, ws.requests, facts

    kept, requests_kept, _ = asyncio.run(run())
    spilled, requests_spilled, facts = asyncio.run(run(in_memory=5))
    assert facts.lookups.users.on_disk and facts.lookups._enrollments.on_disk
    assert spilled.as_dict() == kept.as_dict()
    assert {"would-update-existing", "credits-out-of-range"} <= {f.rule for f in spilled.findings}
    assert requests_spilled == requests_kept
