"""Online validation against an EthosCE site's restws, against the reference API, in the same run.

The kit of ../shared/drupal-feeds (a real Drupal 7 + Feeds site, PHP's built-in server) is provisioned,
and the reference LMS is started with the same facts (the kit's seed.json: 4 courses, 40 learners,
6 enrollments). The same 2,000-row file (make_csv.py --seed: 40 distinct learners, 4 courses) is
validated with `RestwsFacts` and with `ApiFacts`.

Figures:
- restws requests per distinct learner (target <= 2: one user and one enrollment look-up each at most;
  fewer when whole tables are cheaper than the look-ups).
- wall time of online validation on restws, as a ratio against the same validation on the reference API
  (target <= 3x). Best of 5 runs each, fresh caches every run.
- the watch poll's cost per importer: one read of the importer's page plus the newest stored row
  (restws), median of 20, against one `GET /imports` of the reference API (informational).

Run alone: `python bench/run.py bench_ethosce`. Skipped (a note, no figure) where the kit or PHP is absent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

ROWS = 2000
RUNS = 5
TARGET_RATIO = 3.0
TARGET_PER_LEARNER = 2.0


def reference_dataset(seed: dict) -> dict:
    """The kit's seed as a reference-LMS dataset (docs/dataset.md)."""
    from helpers.sandbox import dataset

    types: dict[str, set] = {}
    courses = []
    for c in seed["courses"]:
        for cr in c["credits"]:
            types.setdefault(cr["type"], set()).update([cr["reports_to"]] if cr["reports_to"] else [])
        courses.append({"external_id": c["external_course_id"], "title": c["title"], "has_certificate": bool(c["has_certificate"]),
                        "required_objects": c["required_objects"],
                        "credits": [{"credit_type": cr["type"], "min": cr["min"], "max": cr["max"], "increments": cr["increments"],
                                     "enable_variable_credit": bool(cr["enable_variable_credit"])}
                                    for cr in c["credits"] if cr["active"]]})
    users = [{**({"external_user_id": u["external_user_id"]} if u["external_user_id"] else {}), "email": u["mail"],
              "first_name": u["name"], "last_name": ""} for u in seed["users"]]
    enrollments = [{"email": e["mail"], "course_external_id": e["external_course_id"], "status": e["status"]}
                   for e in seed["enrollments"]]
    return dataset(credit_types=[{"machine_name": t, "label": t, "reports_to": sorted(r)} for t, r in types.items()],
                   courses=courses, users=users, enrollments=enrollments)


def _validate(path: Path, make_facts) -> tuple[float, int, object]:
    """Validates `path` in a worker thread with facts bound to a live client; (seconds, requests, report)."""
    from importconsole.importfile.validate import validate

    async def main():
        async with make_facts.client() as client:
            facts = make_facts.facts(client, asyncio.get_running_loop())
            started = time.perf_counter()
            report = await asyncio.to_thread(validate, path, importer="global", course_external_id=None, facts=facts)
            return time.perf_counter() - started, make_facts.requests(client, facts), report

    return asyncio.run(main())


class _Restws:
    def __init__(self, kit):
        self.kit = kit

    def client(self):
        from importconsole.lms.ethosce import RestwsClient

        return RestwsClient(self.kit.base_url, self.kit.restws_user, self.kit.restws_password)

    def facts(self, client, loop):
        from importconsole.lms.ethosce import RestwsFacts

        return RestwsFacts(client, loop)

    def requests(self, client, facts):
        return client.requests


class _Api:
    def __init__(self, lms):
        self.lms = lms

    def client(self):
        from importconsole.lms.client import LmsClient

        return LmsClient(self.lms.base_url, self.lms.tokens["site_admin"])

    def facts(self, client, loop):
        from importconsole.lms.facts import ApiFacts

        return ApiFacts(client, loop)

    def requests(self, client, facts):
        return facts.calls


POLLS = 20


def _poll_costs(kit, lms) -> tuple[float, float]:
    """Median seconds of one EthosCE watch poll (import page + newest stored row) and of one reference poll."""
    import statistics

    from importconsole.lms.client import LmsClient
    from importconsole.lms.ethosce import DrupalSession, FeedsSite, RestwsClient

    async def main():
        site_times, api_times = [], []
        async with DrupalSession(kit.base_url, kit.admin_user, kit.admin_password) as session, \
                RestwsClient(kit.base_url, kit.restws_user, kit.restws_password) as ws, \
                LmsClient(lms.base_url, lms.tokens["site_admin"]) as api:
            feeds = FeedsSite(session)
            await session.login()
            for _ in range(POLLS):
                t = time.perf_counter()
                await asyncio.gather(feeds.status(kit.importer), ws.last_transcript_id())
                site_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                await api.list_imports()
                api_times.append(time.perf_counter() - t)
        return statistics.median(site_times), statistics.median(api_times)

    return asyncio.run(main())


def run(workdir: Path) -> list[dict]:
    from helpers import feeds_kit
    from helpers.sandbox import start_sandbox

    reason = feeds_kit.kit_unavailable_reason(fail_in_ci=False)
    if reason:
        print(f"  skipped: {reason}")
        return []
    seed = json.loads((feeds_kit.KIT_DIR / "seed.json").read_text(encoding="utf-8"))
    path = workdir / "ethosce-2000.csv"
    subprocess.run([sys.executable, str(feeds_kit.KIT_DIR / "make_csv.py"), str(path), str(ROWS), "--seed",
                    str(feeds_kit.KIT_DIR / "seed.json")], check=True)
    learners = len({line.split(b",")[1] for line in path.read_bytes().splitlines()[1:]})
    with feeds_kit.start_kit() as kit, start_sandbox(reference_dataset(seed)) as lms:
        kit.reset()
        site, api = [], []
        for _ in range(RUNS):
            site.append(_validate(path, _Restws(kit)))
            api.append(_validate(path, _Api(lms)))
        poll_site, poll_api = _poll_costs(kit, lms)
    site_s, site_requests, site_report = min(site, key=lambda r: r[0])
    api_s, api_requests, api_report = min(api, key=lambda r: r[0])
    same = sorted(site_report.counts.items()) == sorted(api_report.counts.items())
    ratio = site_s / api_s
    per_learner = site_requests / learners
    return [
        {"name": f"restws requests per distinct learner ({ROWS} rows, {learners} learners)", "value": per_learner,
         "unit": "req", "baseline_name": f"reference API facts calls ({api_requests})", "baseline": api_requests / learners,
         "ratio": None, "target": f"<= {TARGET_PER_LEARNER:g}", "ok": per_learner <= TARGET_PER_LEARNER},
        {"name": f"online validation of {ROWS} rows on restws (same findings: {'yes' if same else 'NO'})", "value": site_s,
         "unit": "s", "baseline_name": "same file on the reference API", "baseline": api_s, "ratio": ratio,
         "target": f"<= {TARGET_RATIO:g}x", "ok": ratio <= TARGET_RATIO and same},
        {"name": "watch poll per importer (import page + newest stored row, median of 20)", "value": poll_site * 1000,
         "unit": "ms", "baseline_name": "GET /imports on the reference API", "baseline": poll_api * 1000,
         "ratio": poll_site / poll_api, "target": "", "ok": True},
    ]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for row in run(Path(tmp)):
            print(row)
