"""Connect: pick a profile from the config, or create the first one. The token (an EthosCE
profile: the site admin's and the restws account's passwords) goes to the OS keyring (never the
config file); where there is no keyring (most SSH hosts) the screen says so and keeps it in
memory for this run only. Connecting goes through lms.connect, as the CLI does."""

from __future__ import annotations


from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import sentence, shown, said
from importconsole.tui.widgets.toggles import MarkedCheckbox

NO_KEYRING_HELP = (
    "No keyring on this machine (usual over SSH). The token is kept in memory for this run only. "
    "To skip this step next time, give it to your shell, not a file: "
    "read -rs IMPORTCONSOLE_TOKEN && export IMPORTCONSOLE_TOKEN"
)
NO_KEYRING_HELP_ETHOSCE = (
    "No keyring on this machine (usual over SSH). The admin password and the restws password are kept in memory "
    "for this run only. To skip this step next time, give them to your shell, not a file: "
    "read -rs IMPORTCONSOLE_PASSWORD && export IMPORTCONSOLE_PASSWORD; "
    "read -rs IMPORTCONSOLE_RESTWS_PASSWORD && export IMPORTCONSOLE_RESTWS_PASSWORD"
)


def _digest(profile, password: str) -> str:
    """What is kept of a refused password: enough to know it again, never the password itself."""
    import hashlib

    return hashlib.sha256(f"{profile.name}\0{password}".encode()).hexdigest()


class ConnectScreen(ConsoleScreen):
    TITLE_TEXT = "Connect"
    # While a field has the cursor, letters are typed into it; Esc hands them back to the
    # navigation line (f, m, ...), which is otherwise unreachable from here but by Ctrl+P.
    BINDINGS = [Binding("ctrl+s", "connect", "Connect"), Binding("escape", "leave_field", "Leave the field")]

    def __init__(self) -> None:
        super().__init__()
        self.config = None
        self.problem: str | None = None
        # Admin passwords the site refused this run: never posted again (Drupal's flood control
        # locks the account after 5 failed logins).
        self.refused: set[str] = set()

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        with VerticalScroll(classes="form"):
            yield Static("", id="connect-intro", markup=False)
            yield OptionList(id="profiles")
            yield Label("Profile name", id="name-label", markup=False)
            yield Input(placeholder="e.g. production", id="profile-name", compact=True)
            yield Label("LMS address", id="url-label", markup=False)
            yield Input(placeholder="https://lms.example.org", id="base-url", compact=True)
            yield Label("Your LMS user name", id="user-label", markup=False)
            yield Input(placeholder="e.g. jdoe", id="username", compact=True)
            yield Label("API token (hidden as you type)", id="token-label", markup=False)
            yield Input(password=True, id="token", compact=True)
            yield Label("restws password (hidden as you type)", id="restws-label", markup=False)
            yield Input(password=True, id="restws-password", compact=True)
            yield MarkedCheckbox("Remember the token in the OS keyring", value=True, id="remember", compact=True)
            yield Static("", id="keyring-note", classes="hint", markup=False)
            with Horizontal():
                yield Button("Connect (Ctrl+S)", id="connect", variant="primary", compact=True)
            yield Static("", id="connect-result", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._load_config()

    def _load_config(self) -> None:
        from importconsole.config import ConfigError, ConfigMissing, load_config

        path = self.app.config_path
        try:
            self.config = load_config(path)
        except ConfigMissing:
            self.config = None
        except ConfigError as error:
            self.config = None
            self.problem = str(error)
        profiles = self.query_one("#profiles", OptionList)
        profiles.clear_options()
        have_profiles = bool(self.config and self.config.profiles)
        for name, profile in (self.config.profiles.items() if have_profiles else []):
            profiles.add_option(Option(Text(f"{shown(name)}  {shown(profile.base_url)}  ({shown(profile.username)})"), id=name))
        profiles.display = have_profiles
        for widget_id in ("#name-label", "#profile-name", "#url-label", "#base-url", "#user-label", "#username"):
            self.query_one(widget_id).display = not have_profiles
        startup = self.app.startup_problem
        if self.problem:
            intro = f"The config file has problems:\n{said(self.problem)}"
        elif have_profiles and any(p.kind == "ethosce" for p in self.config.profiles.values()):
            intro = ("Pick a profile (Enter), type the token (EthosCE: the admin password and the restws password) "
                     "if asked, then Connect.")
            if all(p.kind == "ethosce" for p in self.config.profiles.values()):
                intro = "Pick a profile (Enter), type the admin password and the restws password if asked, then Connect."
        elif have_profiles:
            intro = "Pick a profile (Enter), type the token if asked, then Connect."
        else:
            intro = "No profile yet: create the first one. It is written to your config file without the token."
        if startup and not self.problem and self.app.session is None:
            intro = f"Not connected: {sentence(said(startup))}\n{intro}"  # why it opened here, not only in a toast
        self.query_one("#connect-intro", Static).update(intro)
        from importconsole.secrets import keyring_available

        if not keyring_available():
            remember = self.query_one("#remember", Checkbox)
            remember.value = False
            remember.disabled = True
            self.query_one("#keyring-note", Static).update(NO_KEYRING_HELP)
        if have_profiles:
            profiles.highlighted = 0
            profiles.focus()
        else:
            self.query_one("#profile-name").focus()
        self._show_secret_fields()

    def _show_secret_fields(self) -> None:
        """An EthosCE profile asks two passwords; the console's own API one token."""
        profile = self.selected_profile()
        ethosce = profile is not None and profile.kind == "ethosce"
        self.query_one("#token-label", Label).update(
            f"Password of the site admin {profile.username} (hidden as you type)" if ethosce
            else "API token (hidden as you type)")
        if ethosce:
            self.query_one("#restws-label", Label).update(
                f"Password of the restws account {profile.restws_username} (hidden as you type)")
        self.query_one("#restws-label").display = ethosce
        self.query_one("#restws-password").display = ethosce
        self.query_one("#remember", Checkbox).label = (
            "Remember the passwords in the OS keyring" if ethosce else "Remember the token in the OS keyring")
        from importconsole.secrets import keyring_available

        if not keyring_available():
            self.query_one("#keyring-note", Static).update(NO_KEYRING_HELP_ETHOSCE if ethosce else NO_KEYRING_HELP)

    @on(OptionList.OptionHighlighted, "#profiles")
    def _profile_highlighted(self) -> None:
        self._show_secret_fields()

    def selected_profile(self):
        if not (self.config and self.config.profiles):
            return None
        profiles = self.query_one("#profiles", OptionList)
        index = profiles.highlighted or 0
        return list(self.config.profiles.values())[index]

    @on(OptionList.OptionSelected, "#profiles")
    def _profile_chosen(self, event: OptionList.OptionSelected) -> None:
        self._connect(self.config.profiles[event.option.id], "", store=False)  # the stored token, if any

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "leave_field":
            return isinstance(self.focused, Input)  # shown in the footer only while typing
        return True

    @on(Button.Pressed, "#connect")
    @on(Input.Submitted, "#token")
    @on(Input.Submitted, "#restws-password")
    def action_connect(self) -> None:
        token = self.query_one("#token", Input).value.strip()
        profile = self.selected_profile()
        if profile is None:
            profile = self._new_profile()
            if profile is None:
                return
        if profile.kind == "ethosce":
            restws = self.query_one("#restws-password", Input).value.strip()
            if bool(token) != bool(restws):
                self.query_one("#connect-result", Static).update("Enter both passwords (or neither, to use the stored ones).")
                return
            token = (token, restws) if token else ""
        # An empty token is looked up (environment, keyring) in the worker: a locked keyring
        # can take seconds to answer, and the screen must not freeze meanwhile.
        self._connect(profile, token, store=bool(token) and self.query_one("#remember", Checkbox).value)

    def _new_profile(self):
        from importconsole.config import ConfigError, init_config, load_config

        name = self.query_one("#profile-name", Input).value.strip()
        url = self.query_one("#base-url", Input).value.strip()
        user = self.query_one("#username", Input).value.strip()
        missing = [label for label, value in (("profile name", name), ("LMS address", url), ("user name", user)) if not value]
        if missing:
            self.query_one("#connect-result", Static).update(f"Fill in: {', '.join(missing)}.")
            return None
        try:
            path = init_config(self.app.config_path, profile=name, base_url=url, username=user)
            self.config = load_config(path)
        except ConfigError as error:
            self.query_one("#connect-result", Static).update(said(str(error)))
            return None
        self.notify(f"Profile {name} written to {path} (the token is not in it).")
        return self.config.profiles[name]

    def _show_result(self, text: str) -> None:
        """A refusal is read where the admin looks: at the top, the old "No password..." line gone."""
        self.query_one("#connect-intro", Static).update("")
        result = self.query_one("#connect-result", Static)
        result.update(text)
        result.scroll_visible(animate=False)

    @work(exclusive=True, group="connect", exit_on_error=False)
    async def _connect(self, profile, typed: str | tuple[str, str], *, store: bool) -> None:
        """`typed`: the token, (admin password, restws password), or "" for the stored ones."""
        import asyncio

        from importconsole import crash
        from importconsole.lms.connect import ConnectFailed, open_backend, who_am_i
        from importconsole.secrets import Credentials
        from importconsole.tui.connecting import credentials_for, session_for

        result = self.query_one("#connect-result", Static)
        ethosce = profile.kind == "ethosce"
        what = "passwords" if ethosce else "API token"
        for secret in (typed if isinstance(typed, tuple) else (typed,)):
            crash.register_secret(secret)
        if not typed:
            result.update(f"Looking for the stored {what}...")
            credentials, why = await asyncio.to_thread(credentials_for, profile)
            if credentials is None:
                result.update(shown(f"Enter the {what}: {why}" if why else f"Enter the {what}."))
                self.query_one("#token").focus()
                return
        elif isinstance(typed, tuple):
            credentials = Credentials(password=typed[0], restws_password=typed[1])
        else:
            credentials = Credentials(token=typed)
        if ethosce and _digest(profile, credentials.password or "") in self.refused:
            self._show_result(f"The site refused this admin password for {shown(profile.username)} a moment ago, so it "
                              "is not sent again (the site locks the account after 5 failed logins). "
                              "Type a different admin password, then Connect.")
            self.query_one("#token").focus()
            return
        result.update(f"Connecting to {shown(profile.base_url)}...")
        try:
            async with open_backend(profile, credentials) as client:
                me = await who_am_i(client)
        except ConnectFailed as error:  # Unreachable, Unauthorized, TLS: a sentence each
            from importconsole.lms.ethosce.errors import LoginRefused

            if isinstance(error.cause, LoginRefused):
                self.refused.add(_digest(profile, credentials.password or ""))
            self._show_result(said(str(error)))
            return
        note = ""
        if store:
            from importconsole.secrets import TokenError, store_passwords, store_token

            try:
                if ethosce:
                    await asyncio.to_thread(store_passwords, profile, credentials.password, credentials.restws_password)
                else:
                    await asyncio.to_thread(store_token, profile, credentials.token)
                note = f" {what[0].upper()}{what[1:]} stored in the OS keyring."
            except TokenError as error:
                note = f" {error} {NO_KEYRING_HELP_ETHOSCE if ethosce else NO_KEYRING_HELP}"
        self.query_one("#token", Input).value = ""
        self.query_one("#restws-password", Input).value = ""
        self.app.set_session(session_for(profile, profile.name, credentials))
        result.update(f"Connected as {shown(me.display_name or me.username)} ({shown(me.role)}).{note}")
        self.app.switch_mode("monitor")
