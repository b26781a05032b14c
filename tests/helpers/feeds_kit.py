"""The real Drupal 7 + Feeds site of `../shared/drupal-feeds/` for tests (README there is the protocol guide).

`start_kit()` provisions the kit into a fresh temporary folder (outside pytest's basetemp, whose files are
scanned for leaked secrets: the kit keeps its passwords in files) on a free port and yields a `FeedsKit`;
the server's process group is stopped afterwards. `kit.reset()` puts the site back to a clean state in one
PHP call (about 0.1 s): importer unlocked, batch mode, no row delay, 10 rows a chunk, no queued cron job,
LMS tables back to seed.json, holding table empty.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT_DIR = (REPO_ROOT / ".." / "shared" / "drupal-feeds").resolve()
IMPORTER = "course_record_import"
COLUMNS = ["external_user_id", "external_email", "external_course_id", "complete", "date_completed", "credit_type", "credits"]

# One PHP call: what `reset()` restores (README "Reset the LMS facts" plus the knobs and the importer's state).
_RESET_PHP = """
variable_set("courserecord_row_delay_ms", 0);
variable_set("feeds_process_limit", 10);
variable_set("courserecord_process_in_background", 0);
ctools_include("export"); ctools_export_load_object_reset("feeds_importer"); cache_clear_all("*", "cache", TRUE);
feeds_source("course_record_import")->unlock();
db_delete("queue")->condition("name", "feeds_source_import")->execute();
db_delete("job_schedule")->condition("name", "feeds_source_import")->execute();
db_delete("semaphore")->execute();
db_delete("flood")->execute();
db_delete("courserecord_transcript_import")->execute();
module_load_include("inc", "courserecord", "courserecord.seed");
return courserecord_seed_apply(courserecord_seed_load(DRUPAL_ROOT . "/seed.json"), TRUE);
"""


def php_available() -> bool:
    php = shutil.which("php")
    if not php:
        return False
    mods = subprocess.run([php, "-m"], capture_output=True, text=True).stdout.split()
    return all(m in mods for m in ("pdo_sqlite", "dom", "mbstring", "gd"))


def kit_unavailable_reason(*, fail_in_ci: bool = True) -> str | None:
    """Why the kit cannot run here (a skip sentence), or None. With CI=true a missing PHP fails the tests
    instead (`fail_in_ci`; the bench only notes it)."""
    if not (KIT_DIR / "provision.sh").is_file():
        return f"the Drupal + Feeds kit is not at {KIT_DIR} (../shared/drupal-feeds beside the repository), so the EthosCE tests cannot run"
    if not php_available():
        msg = ("PHP 8.2 with sqlite3, xml, mbstring and gd is missing (apt-get install php8.2-cli php8.2-sqlite3 "
               "php8.2-xml php8.2-mbstring php8.2-gd; .ci/run installs them), so the EthosCE kit tests cannot run")
        if fail_in_ci and os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " -- and in CI they must run", pytrace=False)
        return msg
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FeedsKit:
    dest: Path
    port: int
    pid: int
    admin_user: str = "admin"
    restws_user: str = "restws_console"
    importer: str = IMPORTER
    kit_dir: Path = KIT_DIR
    _passwords: dict = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_password(self) -> str:
        return self._passwords.setdefault("admin", (self.dest / "admin-password").read_text().strip())

    @property
    def restws_password(self) -> str:
        return self._passwords.setdefault("restws", (self.dest / "restws-password").read_text().strip())

    @property
    def sqlite_path(self) -> Path:
        return self.dest / "db" / "drupal.sqlite"

    @property
    def server_log(self) -> Path:
        return self.dest / "server.log"

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.sqlite_path, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        with self.db() as conn:
            return conn.execute(sql, args).fetchall()

    def scalar(self, sql: str, *args):
        rows = self.query(sql, *args)
        return rows[0][0] if rows else None

    def stored_rows(self) -> list[tuple]:
        """The holding table's rows as the seven mapped columns (complete as "0"/"1"), in id order."""
        rows = self.query(f"SELECT {', '.join(COLUMNS)} FROM courserecord_transcript_import ORDER BY id")
        return [tuple("" if r[c] is None else str(r[c]) for c in COLUMNS) for r in rows]

    def php(self, code: str):
        """`php DEST/drupal-cli.php eval CODE`; returns the JSON of what the code returns (or None)."""
        env = dict(os.environ, DRUPAL_HTTP_HOST=f"127.0.0.1:{self.port}")
        p = subprocess.run(["php", str(self.dest / "drupal-cli.php"), "eval", code], env=env, capture_output=True,
                           text=True, timeout=120)
        if p.returncode:
            raise RuntimeError(f"drupal-cli eval failed ({p.returncode}): {p.stdout[-2000:]} {p.stderr[-2000:]}")
        out = p.stdout.strip()
        return json.loads(out) if out else None

    def set_row_delay(self, ms: int) -> None:
        self.php(f'variable_set("courserecord_row_delay_ms", {int(ms)});')

    def set_process_limit(self, rows: int) -> None:
        self.php(f'variable_set("feeds_process_limit", {int(rows)});')

    def set_background(self, on: bool) -> None:
        self.php(f'variable_set("courserecord_process_in_background", {int(bool(on))});'
                 ' ctools_include("export"); ctools_export_load_object_reset("feeds_importer"); cache_clear_all("*", "cache", TRUE);')

    def cron(self) -> str:
        env = dict(os.environ, DRUPAL_HTTP_HOST=f"127.0.0.1:{self.port}")
        p = subprocess.run(["php", str(self.dest / "drupal-cli.php"), "cron"], env=env, capture_output=True, text=True, timeout=120)
        return p.stdout + p.stderr

    def reset(self) -> None:
        """Back to a clean site (see the module docstring); the admin's sessions are kept."""
        self.php(_RESET_PHP)

    def make_csv(self, out: Path, rows: int, *extra: str, seed: bool = True) -> Path:
        """`make_csv.py OUT ROWS --seed seed.json [--bad-row R --bad KIND]`: rows matching the seed
        (`seed=False`: the README's measurement rows, which match the seed only partly)."""
        with_seed = ["--seed", str(self.kit_dir / "seed.json")] if seed else []
        subprocess.run([sys.executable, str(self.kit_dir / "make_csv.py"), str(out), str(rows), *with_seed, *extra],
                       check=True)
        return out

    def failed_logins(self) -> int:
        """Failed login POSTs the site counted (Drupal's flood table, which its lock-out after 5 reads)."""
        return self.scalar("SELECT COUNT(*) FROM flood WHERE event = 'failed_login_attempt_ip'")

    def stop(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def start_kit() -> Iterator[FeedsKit]:
    """Provision a fresh site on a free port; stop its process group and remove the folder afterwards."""
    root = Path(tempfile.mkdtemp(prefix="importconsole-feeds-kit-"))
    dest = root / "site"
    port = free_port()
    p = subprocess.run(["bash", str(KIT_DIR / "provision.sh"), str(dest), str(port)], capture_output=True, text=True, timeout=600)
    pid_file = dest / "server.pid"
    if p.returncode or not pid_file.is_file():
        if pid_file.is_file():
            FeedsKit(dest, port, int(pid_file.read_text())).stop()
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"provision.sh failed ({p.returncode}): {p.stderr[-3000:]}")
    kit = FeedsKit(dest, port, int(pid_file.read_text()))
    try:
        yield kit
    finally:
        kit.stop()
        shutil.rmtree(root, ignore_errors=True)
