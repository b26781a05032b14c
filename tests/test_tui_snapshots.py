"""SVG snapshots of the main screens at 80x24 and 120x40 (Textual is pinned in pyproject.toml).
Fixed data only: no server, no clock, no temporary paths on screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from importconsole.lms.models import Lock
from importconsole.operations.hung import CAUSE_SPECIAL_CHARACTERS, Diagnosis, HungImport, SuspectCharacter
from importconsole.operations.recover import RowChange, UnlockPlan
from importconsole.operations.watch import ImportView
from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.screens.recover import RecoverScreen
from importconsole.tui.session import LmsSession
from helpers.tui import wait_for

pytestmark = pytest.mark.usefixtures("private_state")  # tests/conftest.py: state and config in tmp_path

SIZES = [(80, 24), (120, 40)]
SESSION = LmsSession(profile="prod", base_url="https://lms.example.org", token="not-a-real-token")
CSV = (
    "external_user_id,first_name,last_name,complete,date_completed,credit_type,credits\r\n"
    "U0041,Ana,Lee,1,2026-04-01,,\r\n"
    "U0042,José,Martínez,1,2026-04-02,,\r\n"
    "U0043,王,芳,1,,,\r\n"
    "U0044,Zoë,Nguyen\u200b,1,2026-04-04,,\r\n"
    "U0045,Łukasz,Nowak,0,,ama,1.0\r\n"
    "U0046,Sam,O'Neil,1,2026-04-06,ama;acpe,1.0\r\n"
)

DIAGNOSIS = Diagnosis(import_id=12, row=4, line=5, cause=CAUSE_SPECIAL_CHARACTERS,
                      characters=(SuspectCharacter(4, "last_name", 6, "U+200B", "ZERO WIDTH SPACE"),),
                      file_source="server", rows_processed=3, rows_total=6)
VIEWS = [
    ImportView(import_id=14, importer="global", state="queued", rows_processed=0, rows_total=1200,
               file_name="legacy-2019.csv", created_by="mlopez"),
    ImportView(import_id=13, importer="course", state="completed", rows_processed=240, rows_total=240,
               course_external_id="CARD-101", file_name="card-101-march.csv", created_by="jdoe"),
    ImportView(import_id=12, importer="course", state="running", rows_processed=3, rows_total=6,
               course_external_id="ETHICS-110", file_name="ethics-110.csv", created_by="admin", rate=0.0,
               holds_lock=True, hung=HungImport(12, "course", 3, 6, 95.0), diagnosis=DIAGNOSIS),
    ImportView(import_id=11, importer="global", state="running", rows_processed=4200, rows_total=10000,
               file_name="board-review.csv", created_by="mlopez", rate=52.5, eta_seconds=110.0, holds_lock=True),
]
LOCKS = {"course": Lock("course", True, 12, "admin", "2026-04-01T10:00:00Z"),
         "global": Lock("global", True, 11, "mlopez", "2026-04-01T10:02:00Z")}
PLAN = UnlockPlan(import_id=12, importer="course", course_external_id="ETHICS-110", file_name="ethics-110.csv",
                  lock=LOCKS["course"], rows_total=6, rows_committed=3, first_row_left=4, diagnosis=DIAGNOSIS,
                  changes=(RowChange(4, "last_name", "removed U+200B (ZERO WIDTH SPACE)"),),
                  remainder=b"header\r\nrow\r\n", remainder_rows=3)


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "ethics-110.csv"
    path.write_bytes(CSV.encode("utf-8"))
    return path


def _app(tmp_path: Path, **kwargs) -> ImportConsoleApp:
    return ImportConsoleApp(theme_dirs=[], live=False, workdir=tmp_path, **kwargs)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_preview(snap_compare, tmp_path, size):
    app = _app(tmp_path, open_path=_file(tmp_path))

    async def ready(pilot):
        await wait_for(pilot, lambda: "6 rows ·" in str(app.screen.query_one("#preview-status").render()))
        await pilot.press("down", "down", "down", "right", "right")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_findings(snap_compare, tmp_path, size):
    app = _app(tmp_path, open_path=_file(tmp_path), start_mode="findings")

    async def ready(pilot):
        await wait_for(pilot, lambda: app.screen.report is not None, timeout=15)
        await pilot.press("down")

    assert snap_compare(app, terminal_size=size, run_before=ready)


def _monitor(tmp_path):
    app = _app(tmp_path, session=SESSION, start_mode="monitor")

    async def ready(pilot):
        await pilot.pause()
        monitor = app.screen
        monitor.show_views(VIEWS, LOCKS, "live")
        monitor.query_one("#imports").move_cursor(2)
        await pilot.pause()

    return app, ready


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_monitor_with_a_hung_import(snap_compare, tmp_path, size):
    app, ready = _monitor(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_recover_plan(snap_compare, tmp_path, size):
    app, show_monitor = _monitor(tmp_path)

    async def ready(pilot):
        await show_monitor(pilot)
        app.push_screen(RecoverScreen(VIEWS[2], plan=PLAN))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, tmp_path, size):
    app, show_monitor = _monitor(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=show_monitor, press=["question_mark"])


def test_high_contrast_monitor_in_16_colours(snap_compare, tmp_path):
    app = _app(tmp_path, session=SESSION, start_mode="monitor", theme_name="importconsole-contrast")

    async def ready(pilot):
        await pilot.pause()
        app.screen.show_views(VIEWS, LOCKS, "live")
        app.screen.query_one("#imports").move_cursor(2)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)
