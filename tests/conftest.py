"""Shared fixtures. The reference LMS runs for real (subprocess, HTTP on 127.0.0.1, SQLite).

Other areas may append fixtures below; keep each one short and documented.
"""

from __future__ import annotations

import pytest

from helpers.sandbox import SandboxServer, dataset, start_sandbox

# Fast enough for tests, slow enough that progress can be watched (20 rows take 0.1 s).
TEST_ROWS_PER_SECOND = 200


@pytest.fixture
def sandbox() -> SandboxServer:
    """A fresh reference LMS on the small default dataset of `helpers.sandbox.dataset()`."""
    with start_sandbox(dataset(), rows_per_second=TEST_ROWS_PER_SECOND) as server:
        yield server


@pytest.fixture(scope="module")
def demo_sandbox() -> SandboxServer:
    """The demo LMS (`--seed demo`), shared by a module: do not leave its importers locked."""
    with start_sandbox("demo", rows_per_second=TEST_ROWS_PER_SECOND) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_real_keyring_or_state(tmp_path_factory, monkeypatch):
    """(connect area) Tests never touch the developer's OS keyring or ~/.local/state: keyring's
    null backend (also for subprocesses) and a private state dir (journal, state file, crashes).
    A test that needs its own sets it after this runs."""
    import keyring
    from keyring.backends import null

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setattr(keyring.core, "_keyring_backend", null.Keyring())


# --- The token never leaks (RELIABILITY.md, security) -------------------------------------------
# Over the whole suite: no token any reference LMS issued appears in a test's captured output or
# logs, nor in any file written under pytest's temporary folder (journals, configs, state files,
# proposals, crash reports). The server's own database and seed files live outside that folder.
# The sandbox's own tests are exempt from the output check: `importconsole sandbox --seed demo`
# prints the demo tokens on purpose.
from helpers import sandbox as _sandbox_helpers

_SERVER_SIDE_NAMES = ("dataset.json", "dataset.toml")


# The scan reads the captured log records, so the libraries that see requests log at DEBUG in
# every test: a token in an httpx/httpcore debug line (headers, URLs) would be caught.
_SCANNED_LOGGERS = ("httpx", "httpcore", "importconsole")


@pytest.fixture(autouse=True)
def _debug_logs_are_scanned():
    import logging

    loggers = [logging.getLogger(name) for name in _SCANNED_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield
    for logger, level in zip(loggers, before):
        logger.setLevel(level)


# The Drupal + Feeds kit's passwords (admin, restws) join the scan once the kit is up.
_KIT_SECRETS: set[str] = set()


def _leaked_tokens(text: str) -> list[str]:
    issued = _sandbox_helpers.ISSUED_TOKENS | {"demo-admin-token", "demo-course-admin-token"} | _KIT_SECRETS
    return sorted(t for t in issued if t in text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.passed or item.path.name.startswith("test_sandbox"):
        return
    leaked = _leaked_tokens(report.capstdout + report.capstderr + report.caplog)
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"an API token reached the captured output or logs: {len(leaked)} token(s) leaked"
        # The failure report shows the captured sections: not the token again.
        report.sections = [(name, _hide_tokens(text)) for name, text in report.sections]


def _hide_tokens(text: str) -> str:
    for token in _leaked_tokens(text):
        text = text.replace(token, "[token]")
    return text


def pytest_sessionfinish(session, exitstatus):
    try:
        base = session.config._tmp_path_factory.getbasetemp()
    except Exception:
        return
    offenders = []
    for path in base.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.name in _SERVER_SIDE_NAMES:
            continue
        try:
            if path.stat().st_size > 20_000_000:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if data.startswith(b"SQLite format 3") or path.name.endswith(("-wal", "-shm")):
            continue  # a reference LMS database made by a test: the server stores its tokens
        if path.suffix in (".json", ".toml") and (b'"tokens"' in data or b"[[tokens]]" in data):
            continue  # a reference LMS dataset (seed file) a test wrote: it defines the tokens
        if _leaked_tokens(data.decode("utf-8", "replace")):
            offenders.append(str(path.relative_to(base)))
    if offenders:
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "an API token was written to: " + ", ".join(offenders[:20])
        if reporter:
            reporter.write_line(message, red=True)
        else:
            print(message)


# --- The real Drupal 7 + Feeds site of ../shared/drupal-feeds (EthosCE backend; tests/helpers/feeds_kit.py) --------
@pytest.fixture(scope="session")
def feeds_kit_session():
    """The kit provisioned once per test session (fresh folder, free port); its process group is stopped after.
    Skips with a sentence where ../shared/drupal-feeds or PHP is absent; with CI=true a missing PHP fails."""
    from helpers import feeds_kit

    reason = feeds_kit.kit_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with feeds_kit.start_kit() as kit:
        _KIT_SECRETS.update({kit.admin_password, kit.restws_password})  # scanned for in every test's output
        yield kit


@pytest.fixture
def feeds_kit(feeds_kit_session):
    """The kit, reset to a clean site before the test (one PHP call, about 0.4 s)."""
    feeds_kit_session.reset()
    return feeds_kit_session


@pytest.fixture
def kit_cli(feeds_kit, monkeypatch, tmp_path):
    """The CLI pointed at the kit: an EthosCE profile in tmp_path/config.toml, both passwords in the environment,
    a private journal."""
    from helpers.profiles import ethosce_profile

    config = ethosce_profile(tmp_path / "config.toml", feeds_kit.base_url, poll_interval=0.2, hung_after=1)
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(config))
    monkeypatch.setenv("IMPORTCONSOLE_PASSWORD", feeds_kit.admin_password)
    monkeypatch.setenv("IMPORTCONSOLE_RESTWS_PASSWORD", feeds_kit.restws_password)
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("IMPORTCONSOLE_TOKEN", raising=False)
    return feeds_kit


@pytest.fixture
def private_state(tmp_path, monkeypatch):
    """(Pilot tests: `pytestmark = pytest.mark.usefixtures("private_state")`) recent files, crash reports and the
    config file in the test's own folder, never the admin's home."""
    monkeypatch.setenv("IMPORTCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("IMPORTCONSOLE_CONFIG", str(tmp_path / "config.toml"))
