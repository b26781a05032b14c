"""Files: recent import files first, then the folder the console was started in."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DirectoryTree, OptionList, Static
from textual.widgets.option_list import Option

from importconsole.tui.recent import recent_files
from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import shown


class ImportFileTree(DirectoryTree):
    """Hidden files stay hidden: an admin's home is full of them."""

    def filter_paths(self, paths):
        return [p for p in paths if not p.name.startswith(".")]

    def process_label(self, label):
        # A file name is text from outside too: an ESC or U+202E in it must not reach the terminal.
        return super().process_label(shown(label) if isinstance(label, str) else label)


class FilesScreen(ConsoleScreen):
    TITLE_TEXT = "Files"
    BINDINGS = [
        Binding("r", "focus_recent", "Recent"),
        Binding("t", "focus_tree", "Folder"),
        Binding("backspace", "up", "Parent folder"),
    ]

    _away = False  # another screen or a dialog was in front since this one was last shown

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        if self.app.welcome:  # the demo's first words stay here, not only in a passing toast
            yield Static(self._welcome(), id="welcome", classes="hint", markup=False)
        yield Static("Recent files (Enter opens)", classes="section-title", markup=False)
        yield OptionList(id="recent")
        yield Static("", id="folder-title", classes="section-title", markup=False)
        yield ImportFileTree(self.app.workdir, id="tree")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        if self.app.welcome:
            self.watch(self.app, "hung_ids", self._say_welcome, init=False)  # it may name a hung import
        self._fill_recent()
        self.query_one("#folder-title", Static).update(f"Folder {shown(str(self.app.workdir))}")
        self.query_one("#tree").focus()

    def _welcome(self) -> str:
        welcome = self.app.welcome
        return welcome(self.app) if callable(welcome) else (welcome or "")

    def _say_welcome(self) -> None:
        self.query_one("#welcome", Static).update(self._welcome())

    def on_screen_suspend(self) -> None:
        self._away = True

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._fill_recent()
        if self._away:  # files appeared meanwhile (x writes a fixed copy): listed, open folders kept open
            self._away = False
            self.query_one("#tree", ImportFileTree).reload()

    def _fill_recent(self) -> None:
        recent = self.query_one("#recent", OptionList)
        recent.clear_options()
        files = recent_files(self.app.state_file)
        for path in files:
            recent.add_option(Option(Text(shown(str(path))), id=str(path)))
        recent.display = bool(files)
        self.query_one(".section-title").display = bool(files)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:  # each recent file's option is its path
            self.app.open_file(Path(event.option.id))

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.app.open_file(event.path)

    def action_focus_recent(self) -> None:
        self.query_one("#recent").focus()

    def action_focus_tree(self) -> None:
        self.query_one("#tree").focus()

    def action_up(self) -> None:
        tree = self.query_one("#tree", ImportFileTree)
        parent = Path(tree.path).resolve().parent
        tree.path = parent
        self.query_one("#folder-title", Static).update(f"Folder {shown(str(parent))}")
