"""The recover plan words the dropped credit from importfile.award: a global-importer import's
credit is never said to reach PARS (DOMAIN.md behaviour 7), and the database agrees."""

from __future__ import annotations

import asyncio

from helpers.sandbox import dataset, start_sandbox
from helpers.workflows import client_for, count, learners, submit

from importconsole.operations.recover import execute_recovery, plan_recovery


def global_file(rows: int, bad_row: int) -> bytes:
    lines = ["external_user_id,external_course_id,title,complete,date_completed,credit_type,credits"]
    for n in range(1, rows + 1):
        lines.append(f"u{n}{chr(0x200b) if n == bad_row else ''},C-FIXED,Fixed,1,2026-01-02,ama,1.0")
    return ("\n".join(lines) + "\n").encode("utf-8")


async def test_a_hung_global_import_plan_says_its_completion_credit_reaches_nobody_not_pars():
    with start_sandbox(dataset(users=learners(20)), rows_per_second=1000) as lms:
        item = await submit(lms, global_file(20, 12), importer="global")
        await asyncio.to_thread(lms.wait_rows, item["id"], 11)
        await asyncio.sleep(0.1)
        async with client_for(lms) as client:
            plan = await plan_recovery(client, item["id"])
            text = "\n".join(plan.describe())
            assert plan.completion_only_rows == tuple(range(12, 21))
            dropped = [c.change for c in plan.changes if c.row == 12 and c.column == "credits"]
            assert dropped == ["completion-only: credit 1.0 ama dropped; the LMS will record "
                               "1 ama (awarded, reported to nobody)"]
            assert "reports it" not in text and "PARS" not in text
            result = await execute_recovery(client, plan)
        await asyncio.to_thread(lms.wait_import, result.reimport.id)
        # What the plan said is what the LMS did: awarded, queued for nobody.
        assert count(lms, "SELECT count(*) FROM credit_records WHERE source = 'awarded'") == 9
        assert count(lms, "SELECT count(*) FROM reporting_queue") == 0
