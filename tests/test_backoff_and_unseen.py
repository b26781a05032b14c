"""One backoff for the console, capped past any count of attempts; `watch` says when the LMS is
not being seen, why, since when and what to do, for as long as it lasts (issue 10, section 2)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import threading
import time

from test_operations_support import (cli_env, client_for, course_file, dataset, learners, start_on_same_port, start_sandbox,
                                     submit, until)

from importconsole.cli import lms_cmds, main
from importconsole.lms.backoff import Backoff, capped_delay
from importconsole.lms.client import LmsClient, RetryPolicy
from importconsole.operations.watch import ImportWatcher


def test_backoff_and_retry_delays_stay_capped_past_a_thousand_attempts():
    backoff = Backoff(base=0.5, cap=15.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) <= 15.0 and min(delays[10:]) >= 7.5  # half to all of the cap, never a tight loop
    policy = RetryPolicy(base=0.5, cap=10.0, random=lambda: 1.0)
    assert policy.backoff(1100) == 10.0 and policy.backoff(10**6) == 10.0
    assert capped_delay(2000, base=1.0, cap=3.0) == 3.0


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when this returns: connecting is refused


async def test_the_watchers_reconnect_loop_survives_1100_failed_reconnects():
    """An event stream down for hours: the loop goes on reconnecting (it used to die with
    OverflowError after about 1,000 attempts and leave the console polling without a word)."""
    waits: list[float] = []

    async def no_wait(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0)

    client = LmsClient(f"http://127.0.0.1:{_refused_port()}", "t0ken", retry=RetryPolicy(attempts=1))
    async with client:
        watcher = ImportWatcher(client, poll_interval=3600, sleep=no_wait, backoff=Backoff(base=0.5, cap=15.0))
        runner = asyncio.create_task(watcher.run())
        deadline = time.monotonic() + 60
        while watcher.stream_connects < 1100 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        alive = not any(task.done() for task in watcher._tasks)
        watcher.stop()
        await runner
    assert watcher.stream_connects >= 1100 and alive
    assert max(waits) <= 3600 and watcher.unseen is not None and "reach" in watcher.unseen.why


def test_watch_says_the_lms_is_not_seen_why_since_when_and_when_it_answers_again(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lms_cmds, "retry_policy", lambda: RetryPolicy(attempts=2, base=0.01, cap=0.02))
    with start_sandbox(dataset(users=learners(40)), rows_per_second=8) as lms:
        cli_env(monkeypatch, tmp_path, lms, poll=0.2)
        item = asyncio.run(submit(lms, course_file(40), course="C-FIXED"))
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(main(["watch", str(item["id"]), "--json"])))
        thread.start()
        time.sleep(1.0)
        lms.stop()  # the LMS goes away for a while
        time.sleep(2.0)
        start_on_same_port(lms)
        thread.join(timeout=40)
        assert not thread.is_alive()
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] if e["event"] != "import" else e["state"] for e in events]
    assert "lms_unseen" in kinds and "lms_seen" in kinds, kinds
    unseen = events[kinds.index("lms_unseen")]
    assert "reach" in unseen["why"] and "Check the network" in unseen["what_to_do"] and unseen["since"].endswith("Z")
    # The outage lasted longer than hung_after (1 s): while the LMS is not seen, no import is called hung.
    assert "hung" not in kinds[kinds.index("lms_unseen"):kinds.index("lms_seen")], kinds
    assert result and result[0] in (0, 1)


def test_the_not_seen_sentence_says_for_how_long_since_when_why_and_what_to_do():
    from importconsole.lms.errors import Unauthorized
    from importconsole.operations.watch import LmsUnseen, what_to_do

    unseen = LmsUnseen(since=1_000_000.0, why="The LMS refused the API token.", what_to_do=what_to_do(Unauthorized("x")))
    text = unseen.sentence(now=1_000_065.0)
    assert text.startswith("The LMS has not been seen for 1m05s (since 13:46:40 UTC): The LMS refused the API token. ")
    assert "importconsole login" in text and "whether any is hung" in text


async def test_a_frozen_lms_that_takes_the_connection_and_sends_nothing_is_not_seen_and_its_hang_not_claimed():
    """SIGSTOP: the LMS's socket still accepts, nothing comes back, no error is raised for minutes
    (found in a trial: the monitor said "live · 1 hung" for three minutes). Silence is the signal."""
    with start_sandbox(dataset(users=learners(12)), rows_per_second=50) as lms:
        hung = await submit(lms, course_file(12, bad_row=6), course="C-FIXED")
        async with client_for(lms) as client:
            watcher = ImportWatcher(client, hung_after=1.0, poll_interval=0.5, silent_after=2.0)
            runner = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.views.get(hung["id"]) and watcher.views[hung["id"]].hung, 15, message="hung")
                await asyncio.sleep(3.0)  # quiet, no event for longer than silent_after: still seen (it was asked)
                assert watcher.unseen is None and watcher.connection == "live"
                os.kill(lms.process.pid, signal.SIGSTOP)
                try:
                    frozen = time.monotonic()
                    await until(lambda: watcher.unseen, 10, message="not seen")
                    assert time.monotonic() - frozen < 5 and "sent nothing back" in watcher.unseen.why
                    assert watcher.views[hung["id"]].hung is None  # a hang is not claimed on an LMS not seen
                finally:
                    os.kill(lms.process.pid, signal.SIGCONT)
                thawed = time.monotonic()
                await until(lambda: watcher.unseen is None, 15, message="seen again")
                assert time.monotonic() - thawed < 5
                await until(lambda: watcher.views[hung["id"]].hung, 10, message="hung again")
            finally:
                watcher.stop()
                await runner
