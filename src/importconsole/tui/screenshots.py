"""`python -m importconsole.tui.screenshots docs/screenshots`: the README's screenshots, taken
from the console running against the demo LMS (the same one `importconsole --demo` starts)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.launch import DEMO_TOKEN, prepare_demo, start_demo_server
from importconsole.tui.session import LmsSession

SIZE = (100, 30)


async def _until(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the demo did not reach the state to photograph")
        await pilot.pause(0.1)


async def take(out: Path, session: LmsSession, files: Path) -> list[Path]:
    app = ImportConsoleApp(session=session, workdir=files, theme_dirs=[], hung_after=2.0,
                           open_path=files / "ethics-110-hangs.csv", state_folder=files.parent / "state")
    saved: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:
        from importconsole.tui.screens.findings import FindingsScreen
        from importconsole.tui.screens.recover import RecoverScreen
        from importconsole.tui.widgets.rowview import RowView

        await _until(pilot, lambda: app.screen.query(RowView) and app.screen.source is not None and app.screen.source.done)
        app.screen.go_to_cell(7, 2)
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("preview.svg", str(out))))

        app.open_file(files / "card-101-partial-credit.csv")
        await pilot.pause(0.3)
        app.importer, app.course_external_id = "course", "CARD-101"
        await pilot.press("v")
        await _until(pilot, lambda: isinstance(app.screen, FindingsScreen) and app.screen.report is not None)
        await pilot.press("down")
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("findings.svg", str(out))))

        await pilot.press("m")
        await _until(pilot, lambda: (v := app.screen.selected_view()) is not None and v.is_hung and v.diagnosis)
        await pilot.pause(0.5)
        saved.append(Path(app.save_screenshot("monitor.svg", str(out))))

        await pilot.press("u")
        await _until(pilot, lambda: isinstance(app.screen, RecoverScreen) and app.screen.plan is not None)
        await pilot.pause(0.3)
        saved.append(Path(app.save_screenshot("recover.svg", str(out))))
    return saved


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="importconsole-shots-") as tmp:
        server = start_demo_server(Path(tmp), rows_per_second=20)
        try:
            session = LmsSession(profile="demo", base_url=server.base_url, token=DEMO_TOKEN,
                                 journal_path=Path(tmp) / "journal.jsonl")
            files = prepare_demo(session, Path(tmp), hung_after=2.0).files
            for path in asyncio.run(take(out, session, files)):
                print(path)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
