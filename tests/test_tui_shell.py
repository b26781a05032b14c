"""The console's shell: themes, help, command palette, crash output."""

from __future__ import annotations

import os

import pytest
from textual.command import CommandPalette

from importconsole.tui.app import ImportConsoleApp
from importconsole.tui.themes import PACKAGED_THEMES, load_theme_file, load_themes
from helpers.tui import private_state, screen_text, wait_for, wait_for_text  # noqa: F401 (autouse fixture)


def test_the_packaged_themes_are_a_dark_a_light_and_a_16_colour_one():
    themes, problems = load_themes()
    assert problems == []
    by_name = {t.name: t for t in themes}
    assert by_name["importconsole-dark"].dark is True
    assert by_name["importconsole-light"].dark is False
    contrast = by_name["importconsole-contrast"]
    assert contrast.ansi is True
    # every colour of the high-contrast theme is one of the terminal's 16
    colours = [v for k, v in contrast.variables.items() if not k.endswith("text-style")]
    for value in [contrast.primary, contrast.error, contrast.warning, *colours]:
        assert value.startswith("ansi_"), value
    for theme in themes:
        assert {"import-hung", "import-running", "import-done", "import-failed"} <= set(theme.variables)


def test_a_broken_theme_file_is_reported_with_its_path_and_the_console_still_opens(tmp_path):
    (tmp_path / "broken.toml").write_text('name = "x"\nprimary = "#12345"\n')
    (tmp_path / "notoml.toml").write_text("name = \n")
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#AA0000"\n[variables]\nimport-hung = "#FFFF00"\n')
    themes, problems = load_themes(tmp_path)
    assert "mine" in {t.name for t in themes}
    messages = {p.path.name: p.message for p in problems}
    assert "is not a colour" in messages["broken.toml"]
    assert "not valid TOML" in messages["notoml.toml"]


async def test_console_opens_with_a_user_theme_and_reports_a_broken_one(tmp_path):
    (tmp_path / "broken.toml").write_text("primary = 3\n")
    (tmp_path / "mine.toml").write_text('name = "mine"\nprimary = "#AA0000"\n')
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[tmp_path], theme_name="mine")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "mine"
        # the state colours exist even though the user theme did not set them
        assert app.theme_variables["import-hung"]
        notes = [n.message for n in app._notifications]
        assert any("broken.toml" in n and "needs a name" in n for n in notes), notes
        await pilot.press("question_mark")  # the toast passes; help keeps saying it
        text = await wait_for_text(pilot, "Themes not loaded")
        assert "broken.toml" in text


async def test_help_lists_the_keys_of_the_screen_and_every_place_to_go(tmp_path):
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        text = await wait_for_text(pilot, "Esc closes")
        for what in ("Monitor", "Preview", "Findings", "Credit fixes", "Journal", "Connect", "Recent", "Quit"):
            assert what in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "FilesScreen"


async def test_command_palette_offers_the_screen_actions_and_runs_them(tmp_path):
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"journal")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.current_mode == "journal"


def test_theme_files_are_packaged_beside_the_code():
    assert (PACKAGED_THEMES / "importconsole-dark.toml").is_file()
    load_theme_file(PACKAGED_THEMES / "importconsole-contrast.toml")


async def test_a_crash_shows_one_sentence_and_never_the_token_or_local_variables(tmp_path):
    from importconsole.tui.session import LmsSession

    class Broken(ImportConsoleApp):
        BINDINGS = [("z", "explode", "Explode")]

        def action_explode(self) -> None:
            token_copy = self.session.token  # a local holding the secret, as real code might  # noqa: F841
            raise RuntimeError(f"boom with {token_copy}")

    session = LmsSession(profile="p", base_url="https://lms.example.org", token="s3cret-token-value")
    app = Broken(session=session, workdir=tmp_path, start_mode="files", theme_dirs=[], live=False)
    panicked: list = []  # what the admin's terminal gets when the console ends
    original_panic = app.panic
    app.panic = lambda *renderables: (panicked.extend(renderables), original_panic(*renderables))[1]
    with pytest.raises(RuntimeError):
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("z")
            await pilot.pause()
    from rich.console import Console

    console = Console(record=True, width=200, file=open(os.devnull, "w"))
    for renderable in panicked:
        console.print(renderable)
    shown = console.export_text()
    assert "importconsole hit an unexpected problem" in shown
    assert "s3cret-token-value" not in shown and "token_copy" not in shown
    reports = list((tmp_path / "state" / "crashes").glob("crash-*.txt"))
    assert len(reports) == 1
    report = reports[0].read_text()
    assert "RuntimeError" in report and "s3cret-token-value" not in report
    assert oct(reports[0].stat().st_mode & 0o777) == "0o600"


async def test_files_screen_opens_a_file_from_the_folder_and_lists_it_first_next_time(tmp_path):
    from textual.widgets import DirectoryTree, OptionList

    (tmp_path / "b-completions.csv").write_bytes(b"external_user_id,complete\r\nu1,1\r\n")
    (tmp_path / "a-other.csv").write_bytes(b"external_user_id,complete\r\nu2,1\r\n")
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[], live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_for_text(pilot, "b-completions.csv")
        assert "a-other.csv" in text
        tree = app.screen.query_one(DirectoryTree)
        await wait_for(pilot, lambda: any(n.data and n.data.path.name == "b-completions.csv"
                                          for n in tree.root.children), what="the folder listed")
        node = next(n for n in tree.root.children if n.data.path.name == "b-completions.csv")
        tree.move_cursor(node)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "preview", what="the preview")
        await wait_for_text(pilot, "b-completions.csv · UTF-8 · comma · 1 row · importer")
    again = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[], live=False)
    async with again.run_test(size=(80, 24)) as pilot:
        recent = again.screen.query_one("#recent", OptionList)
        await wait_for(pilot, lambda: recent.option_count == 1, what="one recent file")
        assert recent.get_option_at_index(0).id == str((tmp_path / "b-completions.csv").resolve())
        recent.focus()
        recent.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: again.current_mode == "preview", what="the preview from the recent list")



async def test_a_fixed_copy_written_by_x_is_in_the_folder_tree_when_the_admin_is_back_on_files(tmp_path):
    from textual.widgets import DirectoryTree

    (tmp_path / "zwsp.csv").write_bytes("external_user_id,complete\r\nu1\u200b,1\r\n".encode())
    app = ImportConsoleApp(workdir=tmp_path, start_mode="files", theme_dirs=[], live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.screen.query_one(DirectoryTree)

        def listed() -> set[str]:
            return {n.data.path.name for n in tree.root.children if n.data}

        await wait_for(pilot, lambda: "zwsp.csv" in listed(), what="the folder listed")
        app.open_file(tmp_path / "zwsp.csv")
        await wait_for(pilot, lambda: app.current_mode == "preview", what="the preview")
        await pilot.press("v")
        await wait_for(pilot, lambda: app.report is not None, timeout=15, what="the findings")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.open_path == tmp_path / "zwsp.fixed.csv", timeout=15, what="the fixed copy")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.current_mode == "files", what="the files screen")
        await wait_for(pilot, lambda: "zwsp.fixed.csv" in listed(), what="the fixed copy in the folder tree")
        assert "zwsp.csv" in listed()

NAVIGATION = ["f Files", "p Preview", "v Findings", "m Monitor", "c Credit", "j Journal", "n Connect", "q Quit"]
# Each main screen's own keys, as the admin reads them in the footer at 80 columns.
OWN_KEYS = {
    "files": ["r Recent", "t Folder", "? Help"],
    "preview": ["v Validate", "s Submit", "g Go to row", "i Importer", "o Course", "? Help"],
    "findings": ["e Errors", "w Warnings", "a All", "x Fix", "r Recheck", "o Course", "s Submit", "? Help"],
    "monitor": ["u Unlock + re-import", "h Next hung", "r Refresh now", "? Help"],
    "credit": ["s Submit proposals", "r Look again", "? Help"],
    "journal": ["r Reload", "? Help"],
}


@pytest.mark.parametrize("mode", sorted(OWN_KEYS))
async def test_every_main_screen_footer_shows_its_keys_and_every_place_to_go_at_80_columns(tmp_path, mode):
    from importconsole.tui.session import LmsSession

    from helpers.tui import screen_text, wait_for

    path = tmp_path / "a.csv"
    path.write_bytes(b"external_user_id,complete\r\nu1,1\r\n")
    session = LmsSession(profile="prod", base_url="https://lms.example.org", token="not-a-real-token")
    app = ImportConsoleApp(theme_dirs=[], live=False, workdir=tmp_path, start_mode=mode, session=session,
                           open_path=path if mode in ("preview", "findings") else None)
    async with app.run_test(size=(80, 24)) as pilot:
        # Polled, not a fixed pause: under load (make test on 2 shared cores) the key line came late.
        def drawn_footer():  # what is drawn, not the binding list
            return "\n".join(screen_text(app).splitlines()[-2:])
        await wait_for(pilot, lambda: "^p Commands" in drawn_footer(), timeout=5, what="the footer's key line")
        footer = drawn_footer()
        # The screen's own key wins where it shares a letter (the preview's v validates: it is listed).
        places = [n for n in NAVIGATION if not (mode == "preview" and n == "v Findings")]
        missing = [k for k in places + OWN_KEYS[mode] + ["^p Commands"] if k not in footer]
        assert missing == [], f"not in the footer at 80x24: {missing}\n{footer}"


async def test_a_click_on_the_navigation_line_goes_there(tmp_path):
    from importconsole.tui.widgets.navigation import NavigationBar

    from helpers.tui import screen_text

    app = ImportConsoleApp(theme_dirs=[], live=False, workdir=tmp_path, start_mode="files")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        line = screen_text(app).splitlines()[-2]
        await pilot.click(NavigationBar, offset=(line.index("j Journal") + 3, 0))
        await wait_for(pilot, lambda: app.current_mode == "journal", what="the journal screen")


async def test_the_command_palette_lists_the_screens_own_actions_before_cursor_keys(tmp_path):
    from importconsole.tui.commands import ConsoleCommands

    app = ImportConsoleApp(workdir=tmp_path, start_mode="journal", theme_dirs=[], live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "journal", what="the journal")
        app.screen.query_one("#journal").focus()  # a table: its cursor keys are bindings too
        await pilot.pause()
        labels = [label for label, _, _ in ConsoleCommands(app.screen)._commands()]
        cursor = next(i for i, label in enumerate(labels) if label.startswith("Cursor up"))
        # the palette's first lines before typing: Reload and the places to go, not "Cursor up"
        assert labels.index("Reload (r)") < cursor and labels.index("Files (f)") < cursor, labels
