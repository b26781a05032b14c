"""Shared fixtures. The reference LMS runs for real (subprocess, HTTP on 127.0.0.1, SQLite).

Other areas may append fixtures below; keep each one short and documented.
"""

from __future__ import annotations

import pytest

from sandbox_helpers import SandboxServer, dataset, start_sandbox

# Fast enough for tests, slow enough that progress can be watched (20 rows take 0.1 s).
TEST_ROWS_PER_SECOND = 200


@pytest.fixture
def sandbox() -> SandboxServer:
    """A fresh reference LMS on the small default dataset of `sandbox_helpers.dataset()`."""
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
