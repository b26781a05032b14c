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

import httpx
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

    def restart(self) -> None:
        """The site comes back after `stop()` (provision.sh is idempotent: it starts the server that was stopped)."""
        subprocess.run(["bash", str(self.kit_dir / "provision.sh"), str(self.dest), str(self.port)], check=True,
                       capture_output=True, timeout=600)
        self.pid = int((self.dest / "server.pid").read_text())

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


# --- A colleague's browser (plain httpx, the site's own forms): imports the console did not upload --------------
@contextmanager
def colleague_browser(kit: FeedsKit) -> Iterator[httpx.Client]:
    """A browser logged in to the site as its admin."""
    from importconsole.lms.ethosce.html import Page

    with httpx.Client(base_url=kit.base_url, follow_redirects=False, timeout=60) as browser:
        form = Page(browser.get("/user/login").text).form("user_login")
        browser.post("/user/login", data={**form.hidden, "name": kit.admin_user, "pass": kit.admin_password, "op": "Log in"})
        yield browser


def upload_in_browser(kit: FeedsKit, browser: httpx.Client, path: Path, op: str = "Import") -> httpx.Response:
    """The importer's form posted with the file: op "Import" (a batch the browser drives) or "Schedule import"
    (the site's cron imports it)."""
    from importconsole.lms.ethosce.html import Page

    form = Page(browser.get(f"/import/{kit.importer}").text).form("feeds_import_form")
    with open(path, "rb") as fh:
        return browser.post(f"/import/{kit.importer}", data={**form.hidden, "op": op},
                            files={"files[feeds]": (path.name, fh, "text/csv")})


@contextmanager
def colleague_batch(kit: FeedsKit, path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """A browser's import: logged in, the file uploaded, its batch started; yields (browser, batch id) for `batch_step`."""
    with colleague_browser(kit) as browser:
        answer = upload_in_browser(kit, browser, path)
        batch = httpx.URL(answer.headers["Location"]).params["id"]
        browser.get("/batch", params={"op": "start", "id": batch})
        yield browser, batch


def batch_step(browser: httpx.Client, batch: str) -> httpx.Response:
    """One step of the batch (op=do), as the browser's batch page posts it."""
    return browser.post(f"/batch?id={batch}&op=do", content=b"")


def colleague_imports(kit: FeedsKit, path: Path) -> None:
    """A browser's import driven to its end (the batch steps until 100 %)."""
    with colleague_batch(kit, path) as (browser, batch):
        while '"percentage":"100"' not in batch_step(browser, batch).text:
            pass
        browser.get(f"/batch?id={batch}&op=finished")


@contextmanager
def colleague_imports_slowly(kit: FeedsKit, path: Path, pause: float = 4.0) -> Iterator[list[int]]:
    """A browser driving its batch to the end on a slow link: a step every `pause` seconds, in a thread.
    Yields once the import shows progress (locked, rows stored); the list gets each step's status code.
    Joined on leaving."""
    import threading

    steps: list[int] = []

    def drive() -> None:
        with colleague_batch(kit, path) as (browser, batch):
            for _ in range(200):
                step = batch_step(browser, batch)
                steps.append(step.status_code)
                if step.status_code != 200 or str(step.json().get("percentage")) == "100":
                    break
                time.sleep(pause)
            browser.get("/batch", params={"op": "finished", "id": batch})

    colleague = threading.Thread(target=drive, daemon=True)
    colleague.start()
    deadline = time.monotonic() + 30
    while not (locked(kit) and kit.scalar("SELECT COUNT(*) FROM courserecord_transcript_import")):
        assert colleague.is_alive() and time.monotonic() < deadline, "the colleague's import never showed progress"
        time.sleep(0.1)
    try:
        yield steps
    finally:
        colleague.join(120)


def colleague_hangs_the_importer(kit: FeedsKit, path: Path) -> int:
    """A browser's import driven until a step dies; returns that step's status code (500 for a bad row)."""
    with colleague_batch(kit, path) as (browser, batch):
        for _ in range(100):
            step = batch_step(browser, batch)
            if step.status_code != 200:
                return step.status_code
    raise AssertionError("the batch never died")


def colleague_abandons(kit: FeedsKit, path: Path, steps: int) -> None:
    """A browser's import whose tab is closed after `steps` batch steps."""
    with colleague_batch(kit, path) as (browser, batch):
        for _ in range(steps):
            batch_step(browser, batch)


def colleague_schedules(kit: FeedsKit, path: Path) -> None:
    """A browser's "Schedule import": the site's cron (`kit.cron()`) imports the file."""
    with colleague_browser(kit) as browser:
        upload_in_browser(kit, browser, path, op="Schedule import")


def locked(kit: FeedsKit) -> bool:
    """Feeds' own verdict: the importer's saved progress is below 100 % (README: decide from progress)."""
    return float(kit.php(f'return feeds_source("{kit.importer}")->progressImporting();')) < 1


def end_the_lease(kit: FeedsKit) -> int:
    """Time passes: the claimed queue item's lease (30 s) ends. Returns how many claims there were."""
    with kit.db() as db:
        return db.execute("UPDATE queue SET expire = 1 WHERE name = 'feeds_source_import' AND expire <> 0").rowcount


def file_keys(path: Path) -> list[tuple]:
    """The file's rows as the processor stores them (the seven mapped columns, complete as 0/1)."""
    from importconsole.operations.ethosce import read_file_rows

    return read_file_rows(path).keys


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
