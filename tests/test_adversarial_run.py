"""A fast slice of issue 12's adversarial run (bench/adversarial.py runs the whole of it, bounded):
hostile inputs through validate and fix leave no traceback, no exit 70 and no write outside --out and
its manifest; API probes at the reference LMS get no 500; the token reaches no output or file."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest

from helpers.sandbox import start_sandbox

ROOT = Path(__file__).resolve().parent.parent


def _harness():
    spec = importlib.util.spec_from_file_location("adversarial", ROOT / "bench" / "adversarial.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["adversarial"] = module
    spec.loader.exec_module(module)
    return module


adv = _harness()


@pytest.fixture
def lms_and_workspace(tmp_path):
    token = "adv-test-" + "5f" * 16
    with start_sandbox("demo") as lms:
        with sqlite3.connect(lms.db_path) as db:
            db.execute("INSERT INTO tokens VALUES (?, 'admin', 'site_admin', 'Adversary Admin')", (token,))
        lms.tokens["site_admin"] = token
        yield lms, adv.Workspace(tmp_path, lms.base_url), token


def test_hostile_inputs_special_files_and_probes(lms_and_workspace):
    lms, ws, token = lms_and_workspace
    findings = adv.Findings()
    # the special files (0-byte, binary, symlinks, loop, FIFO, folder, /dev/zero, hostile name) and a few mutations
    adv.mutated_files(ws, lms, token, count=2, seed=7, budget_s=60, f=findings,
                      labels=("validate_json", "fix_sanitize"))
    assert findings.figures["mutated_runs"] == 2 * 17
    adv.api_probes(lms, findings)
    assert findings.figures["api_probes"] > 300
    assert findings.broke == []


def test_the_harness_sees_a_write_outside_out(lms_and_workspace, monkeypatch):
    """The check itself can fail: a command that writes beside --out is reported."""
    lms, ws, token = lms_and_workspace
    findings = adv.Findings()
    real_run = ws.run

    def run_and_litter(argv, env, **kw):
        result = real_run(argv, env, **kw)
        (ws.root / "outs" / "stray.csv").write_text("x")
        return result

    monkeypatch.setattr(ws, "run", run_and_litter)
    monkeypatch.setattr(adv, "make_inputs", lambda folder, count, seed: [("clean", ROOT / "examples" / "course-import-clean.csv")])
    adv.mutated_files(ws, lms, token, count=1, seed=1, budget_s=30, f=findings, labels=("validate",))
    assert any("wrote outside --out" in b for b in findings.broke)
