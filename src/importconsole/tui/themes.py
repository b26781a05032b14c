"""Themes are TOML files (themes/*.toml, packaged, plus the user's config dir) turned into
Textual `Theme` objects. A broken file becomes a `ThemeProblem` shown to the admin, never a crash."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

PACKAGED_THEMES = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "importconsole-dark"

# Colours for import states and findings, used when a theme does not set them.
STATE_VARIABLE_DEFAULTS = {
    "import-running": "#5FAFD7",
    "import-done": "#5FD75F",
    "import-failed": "#FF5F5F",
    "import-hung": "#FF5FAF",
    "import-queued": "#A8A8A8",
    "finding-error": "#FF5F5F",
    "finding-warning": "#FFAF00",
}

_COLOUR_FIELDS = ("primary", "secondary", "warning", "error", "success", "accent",
                  "foreground", "background", "surface", "panel", "boost")
_OTHER_FIELDS = {"name": str, "dark": bool, "ansi": bool, "luminosity_spread": float, "text_alpha": float}


@dataclass(frozen=True)
class ThemeProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        # The file's name first: a long folder wraps or is cut, and the name must still be read.
        where = f" (in {self.path.parent})" if str(self.path.parent) not in ("", ".") else ""
        return f"theme file {self.path.name}: {self.message}{where}"


def user_theme_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("importconsole")) / "themes"


def load_theme_file(path: Path) -> Theme:
    """One TOML file -> Theme; ValueError with a sentence when it is not a theme."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot be read ({error.__class__.__name__}: {error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"is not valid TOML ({error}); fix the line it names or delete the file") from None
    known = set(_COLOUR_FIELDS) | set(_OTHER_FIELDS) | {"variables"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    if not isinstance(data.get("name"), str) or not data.get("name"):
        raise ValueError('needs a name, e.g. name = "my-theme"')
    if not isinstance(data.get("primary"), str):
        raise ValueError('needs a primary colour, e.g. primary = "#5FAFD7"')
    for key, kind in _OTHER_FIELDS.items():
        if key in data and not isinstance(data[key], kind if kind is not float else (int, float)):
            raise ValueError(f"{key} must be a {kind.__name__}")
    for key in _COLOUR_FIELDS:
        if key in data:
            _check_colour(key, data[key])
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError("[variables] must be a table of name = colour")
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ValueError(f"variables.{key} must be a string")
        if key in STATE_VARIABLE_DEFAULTS:
            _check_colour(f"variables.{key}", value)
    fields = {f.name for f in dataclasses.fields(Theme)}
    kwargs = {k: v for k, v in data.items() if k in fields and k != "variables"}
    return Theme(variables={**variables}, **kwargs)


def _check_colour(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a colour string like \"#5FAFD7\"")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(f"{key} = {value!r} is not a colour; use \"#RRGGBB\" or a name like \"ansi_red\"") from None


def load_themes(*dirs: Path) -> tuple[list[Theme], list[ThemeProblem]]:
    """Every *.toml of the packaged dir, then the given dirs (a user theme may replace a packaged one)."""
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    for folder in (PACKAGED_THEMES, *dirs):
        try:
            paths = sorted(folder.glob("*.toml")) if folder.is_dir() else []
        except OSError:
            paths = []
        for path in paths:
            try:
                theme = load_theme_file(path)
            except ValueError as error:
                problems.append(ThemeProblem(path, str(error)))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
