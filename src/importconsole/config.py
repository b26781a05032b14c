"""Profiles (TOML) and the console's own state file.

The admin's `config.toml` is read, never rewritten: `${VAR}` interpolation happens in memory only.
The app writes just two files it owns, with tomli-w: a first config (`config init`, never over an
existing file) and `state.toml` (last profile, theme, recent files).

Every problem is reported with the file, the key and what is allowed, all at once, so
`importconsole config validate` can list them in one go.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import tomli_w

from importconsole.private_files import open_private, write_private

APP_NAME = "importconsole"
IMPORTERS = ("course", "global")
TOP_LEVEL_KEYS = ("default_profile", "profiles")
PROFILE_KEYS = ("kind", "base_url", "username", "ca_bundle", "poll_interval", "hung_after", "importer",
                "restws_username", "course_importer", "global_importer")
# Which LMS a profile speaks to: the console's own API (the reference LMS), or an EthosCE site
# (Drupal 7 + Feeds admin pages, restws web services).
KINDS = ("reference", "ethosce")
ETHOSCE_ONLY_KEYS = ("restws_username", "course_importer", "global_importer")
DEFAULT_COURSE_IMPORTER = "course_record_import"
# A Feeds importer id is a Drupal machine name.
IMPORTER_ID = re.compile(r"^[a-z0-9_]{1,128}$")
# Keys that look like someone tried to put a secret in the file: refused without echoing the value.
SECRET_KEYS = ("token", "api_token", "password", "secret", "api_key", "bearer", "restws_password", "admin_password")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
VAR = re.compile(r"\$\{([^}]*)\}")

# Bounds a person can reason about; the TUI's hung detector uses hung_after directly.
POLL_INTERVAL = (0.1, 300.0)
HUNG_AFTER = (1.0, 86400.0)


def config_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def state_dir() -> Path:
    override = os.environ.get("IMPORTCONSOLE_STATE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def config_path(path: str | os.PathLike | None = None) -> Path:
    """--config PATH, else $IMPORTCONSOLE_CONFIG, else the platform's config dir."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get("IMPORTCONSOLE_CONFIG")
    if env:
        return Path(env).expanduser()
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str  # dotted, e.g. profiles.prod.poll_interval; "" for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a config file; str() lists each on its own line."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigMissing(ConfigError, FileNotFoundError):
    """No config file yet (first run)."""


@dataclass(frozen=True)
class Profile:
    name: str
    base_url: str
    username: str
    ca_bundle: str | None = None
    poll_interval: float = 2.0
    hung_after: float = 60.0
    importer: str = "course"
    kind: str = "reference"
    # EthosCE only: the restws web-services account (HTTP Basic; its name starts with "restws")
    # and the Feeds importer ids of the course-level and the global importer.
    restws_username: str | None = None
    course_importer: str = DEFAULT_COURSE_IMPORTER
    global_importer: str | None = None

    @property
    def is_ethosce(self) -> bool:
        return self.kind == "ethosce"

    def importer_id(self, importer: str) -> str | None:
        """The Feeds importer id for "course" or "global" on an EthosCE profile (None: not configured)."""
        return self.course_importer if importer == "course" else self.global_importer


@dataclass(frozen=True)
class Config:
    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)
    default_profile: str | None = None

    def profile(self, name: str | None = None) -> Profile:
        """The named profile, else default_profile, else the only one."""
        chosen = name or self.default_profile
        if chosen is None:
            if len(self.profiles) == 1:
                return next(iter(self.profiles.values()))
            names = ", ".join(self.profiles) or "none"
            raise ConfigError([ConfigProblem(str(self.path), "default_profile",
                                             f"several profiles ({names}) and no default_profile; pass --profile NAME or set default_profile")])
        if chosen not in self.profiles:
            names = ", ".join(self.profiles) or "none"
            raise ConfigError([ConfigProblem(str(self.path), f"profiles.{chosen}",
                                             f"no profile named {chosen!r}; the profiles are: {names}")])
        return self.profiles[chosen]


# A value that may be a secret is never echoed in a config message: a long unbroken string of
# letters and digits (a token pasted into the wrong key), or anything with a query string.
_OPAQUE = re.compile(r"[A-Za-z0-9_\-+=]{20,}")


def _shown(raw: Any) -> str:
    """repr(raw) for a message, or a mention that it is not shown when it could be a secret."""
    text = raw if isinstance(raw, str) else repr(raw)
    opaque = (_OPAQUE.search(text) and any(c.isdigit() for c in text) and any(c.isalpha() for c in text))
    if len(text) > 40 or opaque or "?" in text or "=" in text:
        return "a value that is not shown (it may be a secret)"
    return repr(raw)


def _base_url_problem(url: str) -> str | None:
    """What is wrong with base_url, without its value: it is where tokens get pasted."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "is not a URL; use the LMS address, e.g. \"https://lms.example.org\" (the value is not shown)"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return ("has a query string or fragment (?... or #...): refused, as a token or session id pasted there would "
                "be sent and logged; give the LMS address alone, e.g. \"https://lms.example.org\" "
                "(the value is not shown; the API token comes from the keyring or IMPORTCONSOLE_TOKEN)")
    if "@" in parts.netloc:
        return ("has a user name or password in it (user:password@host): refused; give the LMS address alone "
                "(the value is not shown; the API token comes from the keyring or IMPORTCONSOLE_TOKEN)")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return ("must start with https:// and name a host, e.g. \"https://lms.example.org\" (the value is not "
                "shown: it may be a secret)")
    return None


def _suggest(word: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _interpolate(value: str, file: str, key: str, environ: Mapping[str, str], problems: list[ConfigProblem]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(ConfigProblem(file, key, f"${{{name if _shown(name) == repr(name) else '...'}}} is not a valid environment variable name (letters, digits, _)"))
            return m.group(0)
        if name == "IMPORTCONSOLE_TOKEN":  # its value would be echoed by a message, or sent as a field
            problems.append(ConfigProblem(file, key, "uses ${IMPORTCONSOLE_TOKEN}: the API token is never part of the config; "
                                                     "remove it (the token is read from IMPORTCONSOLE_TOKEN or the keyring by itself)"))
            return m.group(0)
        if name not in environ:
            problems.append(ConfigProblem(file, key, f"uses ${{{name}}} but the environment variable {name} is not set; set it or write the value"))
            return m.group(0)
        return environ[name]

    return VAR.sub(repl, value)


def _number(raw: Any, file: str, key: str, bounds: tuple[float, float], problems: list[ConfigProblem]) -> float | None:
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            pass
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        problems.append(ConfigProblem(file, key, f"must be a number of seconds between {bounds[0]:g} and {bounds[1]:g}, not {_shown(raw)}"))
        return None
    if not bounds[0] <= raw <= bounds[1]:
        problems.append(ConfigProblem(file, key, f"must be between {bounds[0]:g} and {bounds[1]:g} seconds, not {raw:g}"))
        return None
    return float(raw)


def _profile(name: str, table: Any, file: str, environ: Mapping[str, str], problems: list[ConfigProblem]) -> Profile | None:
    where = f"profiles.{name}"
    if not PROFILE_NAME.match(name):
        problems.append(ConfigProblem(file, where, "a profile name may use letters, digits, '.', '_' and '-' (at most 64)"))
    if not isinstance(table, dict):
        problems.append(ConfigProblem(file, where, f"must be a table: [profiles.{name}] with base_url and username under it"))
        return None
    before = len(problems)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        k = f"{where}.{key}"
        if key.lower() in SECRET_KEYS:
            problems.append(ConfigProblem(file, k, _secret_in_file(key, name)))
            continue
        if key not in PROFILE_KEYS:
            problems.append(ConfigProblem(file, k, f"unknown key{_suggest(key, PROFILE_KEYS)}; allowed: {', '.join(PROFILE_KEYS)}"))
            continue
        if isinstance(raw, str):
            raw = _interpolate(raw, file, k, environ, problems)
        values[key] = raw
    for required in ("base_url", "username"):
        if required not in table:
            problems.append(ConfigProblem(file, f"{where}.{required}", "missing; every profile needs base_url and username"))
    url = values.get("base_url")
    if url is not None:
        if not isinstance(url, str) or not url.strip():
            problems.append(ConfigProblem(file, f"{where}.base_url", "must be the LMS address as a string, e.g. \"https://lms.example.org\""))
        elif "${" not in url:
            from importconsole.lms.client import check_site_url  # one rule for which addresses are safe
            from importconsole.lms.errors import InsecureUrl

            secret = "the passwords" if values.get("kind") == "ethosce" else "the API token"
            wrong = _base_url_problem(url)
            if wrong is None:
                try:
                    check_site_url(url, secret)
                except InsecureUrl:  # plain http to another machine: the host is named, not the rest
                    from urllib.parse import urlsplit

                    host = urlsplit(url.strip()).hostname
                    wrong = (f"Refusing plain http:// to {host}: {secret} would cross the network unencrypted. "
                             f"Use https://{host} (plain http is allowed only to this machine).")
            if wrong:
                problems.append(ConfigProblem(file, f"{where}.base_url", wrong))
    user = values.get("username")
    if user is not None and (not isinstance(user, str) or not user.strip()):
        problems.append(ConfigProblem(file, f"{where}.username", "must be your LMS user name as a non-empty string"))
    ca = values.get("ca_bundle")
    if ca is not None:
        if not isinstance(ca, str) or not ca.strip():
            problems.append(ConfigProblem(file, f"{where}.ca_bundle", "must be the path of a PEM file with your CA's certificates"))
        elif "${" not in ca and not Path(ca).expanduser().is_file():
            problems.append(ConfigProblem(file, f"{where}.ca_bundle", f"no file at {ca if _shown(ca) == repr(ca) else _shown(ca)}; give the path of a PEM file with your CA's certificates, or remove the key"))
    poll = _number(values["poll_interval"], file, f"{where}.poll_interval", POLL_INTERVAL, problems) if "poll_interval" in values else 2.0
    hung = _number(values["hung_after"], file, f"{where}.hung_after", HUNG_AFTER, problems) if "hung_after" in values else 60.0
    importer = values.get("importer", "course")
    if importer not in IMPORTERS:
        problems.append(ConfigProblem(file, f"{where}.importer", f"must be \"course\" (course-level importer, counted in PARS) or \"global\" (legacy data, left out of PARS), not {_shown(importer)}"))
    kind = values.get("kind", "reference")
    ethosce = _ethosce_keys(kind, values, file, where, problems)
    if len(problems) > before:
        return None
    return Profile(name=name, base_url=values["base_url"].strip(), username=values["username"].strip(),
                   ca_bundle=str(Path(ca).expanduser()) if ca else None, poll_interval=poll, hung_after=hung, importer=importer,
                   kind=kind, **ethosce)


def _secret_in_file(key: str, profile: str) -> str:
    if "password" in key.lower():
        return ("passwords never go in the config file; remove this line and run "
                f"`importconsole login --profile {profile}` (or set IMPORTCONSOLE_PASSWORD and IMPORTCONSOLE_RESTWS_PASSWORD)")
    return ("the API token never goes in the config file; remove this line and run "
            f"`importconsole login --profile {profile}` (or set IMPORTCONSOLE_TOKEN)")


def _ethosce_keys(kind: Any, values: dict[str, Any], file: str, where: str, problems: list[ConfigProblem]) -> dict[str, Any]:
    """The EthosCE keys, checked; {} for the console's own API (where they mean nothing)."""
    if kind not in KINDS:
        problems.append(ConfigProblem(file, f"{where}.kind", f"must be \"reference\" (the console's own LMS API, the default) "
                                                             f"or \"ethosce\" (an EthosCE site: Drupal Feeds and restws), not {kind!r}"))
        return {}
    if kind != "ethosce":
        for key in ETHOSCE_ONLY_KEYS:
            if key in values:
                problems.append(ConfigProblem(file, f"{where}.{key}", "is only used by an EthosCE profile; "
                                                                     "add kind = \"ethosce\" or remove the line"))
        return {}
    out: dict[str, Any] = {}
    restws = values.get("restws_username")
    if restws is None:
        problems.append(ConfigProblem(file, f"{where}.restws_username", "missing; an EthosCE profile needs the restws web-services "
                                                                        "account that reads courses, users and records (its name starts with \"restws\")"))
    elif not isinstance(restws, str) or not restws.strip().startswith("restws"):
        problems.append(ConfigProblem(file, f"{where}.restws_username", f"must start with \"restws\" (restws accepts HTTP Basic "
                                                                        f"only for such accounts), not {restws!r}"))
    elif restws.strip() == str(values.get("username", "")).strip():
        problems.append(ConfigProblem(file, f"{where}.restws_username", "must be another account than username: the admin "
                                                                        "imports and unlocks on the pages, the restws account only reads"))
    else:
        out["restws_username"] = restws.strip()
    for key, default in (("course_importer", DEFAULT_COURSE_IMPORTER), ("global_importer", None)):
        value = values.get(key, default)
        if value is None:
            continue
        if not isinstance(value, str) or not IMPORTER_ID.match(value):
            problems.append(ConfigProblem(file, f"{where}.{key}", "must be a Feeds importer id: lower-case letters, digits and _ "
                                                                  f"(the NAME in /import/NAME on the site), not {value!r}"))
        else:
            out[key] = value
    if values.get("importer") == "global" and "global_importer" not in values:
        problems.append(ConfigProblem(file, f"{where}.importer", "is \"global\" but global_importer is not set; add "
                                                                 "global_importer = \"ID\" (from /import on the site)"))
    return out


def parse_config(text: str, path: Path, environ: Mapping[str, str] | None = None) -> tuple[Config | None, list[ConfigProblem]]:
    environ = os.environ if environ is None else environ
    file = str(path)
    problems: list[ConfigProblem] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [ConfigProblem(file, "", f"not valid TOML: {exc}. Fix that line (strings need double quotes; tables look like [profiles.NAME])")]
    for key in data:
        if key.lower() in SECRET_KEYS:
            problems.append(ConfigProblem(file, key, "the API token never goes in the config file; remove this line and run `importconsole login`"))
        elif key not in TOP_LEVEL_KEYS:
            hint = _suggest(key, TOP_LEVEL_KEYS)
            if not hint and isinstance(data[key], dict) and set(data[key]) & set(PROFILE_KEYS):
                hint = f" (a profile goes under [profiles.{key}])"
            problems.append(ConfigProblem(file, key, f"unknown key{hint}; allowed at the top: {', '.join(TOP_LEVEL_KEYS)}"))
    raw_profiles = data.get("profiles", {})
    profiles: dict[str, Profile] = {}
    if not isinstance(raw_profiles, dict):
        problems.append(ConfigProblem(file, "profiles", "must be a table of profiles: [profiles.NAME]"))
        raw_profiles = {}
    for name, table in raw_profiles.items():
        prof = _profile(name, table, file, environ, problems)
        if prof is not None:
            profiles[name] = prof
    default = data.get("default_profile")
    if default is not None:
        if not isinstance(default, str):
            problems.append(ConfigProblem(file, "default_profile", f"must be the name of a profile as a string, not {_shown(default)}"))
            default = None
        elif default not in raw_profiles:
            names = ", ".join(raw_profiles) or "none defined"
            problems.append(ConfigProblem(file, "default_profile", f"names {_shown(default)}, which is not a profile; the profiles are: {names}"))
    return Config(path=path, profiles=profiles, default_profile=default), problems


def load_config(path: str | os.PathLike | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The config, or ConfigError listing every problem (ConfigMissing when there is no file)."""
    target = config_path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raise ConfigMissing([ConfigProblem(str(target), "", "no config file here yet; create one with `importconsole config init`")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(str(target), "", "is a folder, not a config file; give the path of a .toml file")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(target), "", f"cannot be read ({exc.strerror}); check its permissions")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(str(target), "", f"is not UTF-8 (byte {exc.start}); save it as UTF-8")]) from None
    config, problems = parse_config(text, target, environ)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def validate_config(path: str | os.PathLike | None = None, *, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    try:
        load_config(path, environ=environ)
    except ConfigError as exc:
        return exc.problems
    return []


def _write_new(path: Path, data: dict[str, Any]) -> None:
    """Write a file the app owns; never over an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_private(path, "new"), "wb") as out:
        tomli_w.dump(data, out)


def init_config(path: str | os.PathLike | None, *, profile: str, base_url: str, username: str,
                ca_bundle: str | None = None, importer: str = "course", kind: str = "reference",
                restws_username: str | None = None) -> Path:
    """A first config with one profile. Refuses to touch an existing file. The profile is checked as
    `config validate` checks it (an EthosCE one without its restws account is refused, with why)."""
    target = config_path(path)
    if target.exists():
        raise ConfigError([ConfigProblem(str(target), "", "already exists; importconsole never rewrites your config. Edit it by hand (see config.example.toml)")])
    table: dict[str, Any] = {"base_url": base_url, "username": username, "importer": importer}
    if kind != "reference":
        table = {"kind": kind, **table}
    if restws_username is not None:
        table["restws_username"] = restws_username
    if ca_bundle:
        table["ca_bundle"] = ca_bundle
    data = {"default_profile": profile, "profiles": {profile: table}}
    config, problems = parse_config(tomli_w.dumps(data), target, environ={})
    if problems:
        raise ConfigError(problems)
    try:
        _write_new(target, data)
    except FileExistsError:
        raise ConfigError([ConfigProblem(str(target), "", "already exists; importconsole never rewrites your config")]) from None
    return target


# ---- the state file: the app's own memory between runs -----------------------------------

MAX_RECENT = 10


@dataclass
class State:
    last_profile: str | None = None
    theme: str | None = None
    recent_files: list[str] = field(default_factory=list)

    def remember_file(self, path: str | os.PathLike) -> None:
        p = str(Path(path).resolve())
        self.recent_files = [p] + [x for x in self.recent_files if x != p][: MAX_RECENT - 1]


def state_path() -> Path:
    return state_dir() / "state.toml"


def load_state(path: Path | None = None) -> State:
    """A damaged or missing state file is not worth a word: start fresh."""
    target = path or state_path()
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return State()
    recent = data.get("recent_files", [])
    return State(
        last_profile=data.get("last_profile") if isinstance(data.get("last_profile"), str) else None,
        theme=data.get("theme") if isinstance(data.get("theme"), str) else None,
        recent_files=[x for x in recent if isinstance(x, str)][:MAX_RECENT] if isinstance(recent, list) else [],
    )


def save_state(state: State, path: Path | None = None) -> Path:
    target = path or state_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in {"last_profile": state.last_profile, "theme": state.theme,
                              "recent_files": state.recent_files[:MAX_RECENT]}.items() if v is not None}
    return write_private(target, tomli_w.dumps(data), atomic=True)  # recent files name people's data
