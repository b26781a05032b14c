"""The adversarial run of issue 12, bounded: mutated import files through validate/fix/submit,
token leak hunts, API probes at the reference LMS, kill -9 of server and CLI, peak RSS of large inputs.

    .venv/bin/python bench/adversarial.py [--files N] [--minutes M] [--seed S] [--big-mib M] [--json PATH]

Everything runs on loopback against `importconsole sandbox` (tests/helpers/sandbox.py), every loop is
bounded in count and in time (--minutes is a wall-clock budget for the mutated-file part; each command
has its own timeout). Prints one figure line per check and a JSON summary; exit 1 when anything broke.
tests/test_adversarial_run.py runs a fast subset of the same functions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from helpers.sandbox import start_sandbox  # noqa: E402

EXAMPLES = ROOT / "examples"
COURSE = "CARD-101"
CMD_TIMEOUT = 60.0

# Runs the CLI as `importconsole` would, with DEBUG logging into a file (leak hunts) and its own peak RSS
# (VmHWM: ru_maxrss would count the harness's pages at fork) written to $ADV_RSS_FILE.
_WRAPPER = r"""
import logging, os, sys
log = os.environ.get("ADV_DEBUG_LOG")
if log:
    logging.basicConfig(level=logging.DEBUG, filename=log)
def _peak():
    path = os.environ.get("ADV_RSS_FILE")
    if not path:
        return
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(path, "w").write(line.split()[1])
import atexit
atexit.register(_peak)
if os.environ.get("ADV_CRASH_WITH_TOKEN"):
    import httpx
    def _boom(self, request, *a, **k):
        raise RuntimeError(f"injected crash carrying {request.headers.get('authorization')}")
    async def _aboom(self, request, *a, **k):
        _boom(self, request)
    httpx.Client.send = _boom
    httpx.AsyncClient.send = _aboom
from importconsole.cli import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Run:
    argv: list[str]
    code: int | None
    out: str
    err: str
    seconds: float
    rss_kib: int | None = None


@dataclass
class Findings:
    figures: dict = field(default_factory=dict)
    broke: list[str] = field(default_factory=list)

    def bad(self, what: str) -> None:
        if len(self.broke) < 200:
            self.broke.append(what)
        print("BROKE:", what[:400], flush=True)


class Workspace:
    """One temporary home: config, state dir, inputs, outputs and a working folder the CLI runs in."""

    def __init__(self, root: Path, base_url: str = ""):
        self.root = root
        for name in ("inputs", "outs", "cwd", "home", "state", "keyring"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.config = root / "home" / "config.toml"
        self.set_lms(base_url)

    def set_lms(self, base_url: str) -> None:
        url = base_url or "http://127.0.0.1:9"
        self.config.write_text(f'default_profile = "lms"\n[profiles.lms]\nbase_url = "{url}"\nusername = "admin"\n'
                               f'poll_interval = 0.2\nhung_after = 5\n', encoding="utf-8")

    def env(self, token: str | None = None, *, keyring_backend: str = "keyring.backends.fail.Keyring",
            debug_log: Path | None = None, rss_file: Path | None = None, crash: bool = False) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTCONSOLE_")}
        env.update(HOME=str(self.root / "home"), XDG_CONFIG_HOME=str(self.root / "home" / ".config"),
                   XDG_DATA_HOME=str(self.root / "home" / ".local"), IMPORTCONSOLE_CONFIG=str(self.config),
                   IMPORTCONSOLE_STATE_DIR=str(self.root / "state"), PYTHON_KEYRING_BACKEND=keyring_backend,
                   ADV_KEYRING_FILE=str(self.root / "keyring" / "store.json"),
                   PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")]),
                   COLUMNS="120", NO_COLOR="1")
        env.pop("ADV_DEBUG_LOG", None)
        if token:
            env["IMPORTCONSOLE_TOKEN"] = token
        if debug_log:
            env["ADV_DEBUG_LOG"] = str(debug_log)
        if rss_file:
            env["ADV_RSS_FILE"] = str(rss_file)
        if crash:
            env["ADV_CRASH_WITH_TOKEN"] = "1"
        return env

    def run(self, argv: list[str], env: dict, *, stdin: bytes = b"", timeout: float = CMD_TIMEOUT) -> Run:
        started = time.monotonic()
        rss_file = env.get("ADV_RSS_FILE")
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, *argv], cwd=self.root / "cwd", env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
        rss = None
        if rss_file and Path(rss_file).exists():
            rss = int(Path(rss_file).read_text() or 0)
        return Run(argv, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                   time.monotonic() - started, rss)


# ---------------------------------------------------------------- mutated files

def _bases() -> list[bytes]:
    return [p.read_bytes() for p in sorted(EXAMPLES.glob("*.csv"))]


def _rows(n: int, *, name: str = "Ada") -> bytes:
    head = b"external_user_id,first_name,last_name,enrollment_start,complete,date_completed,credit_type,credits,participant_category\n"
    return head + b"".join(b"U%07d,%s,Last%d,2026-09-01,1,2026-10-01,,,\n" % (i, name.encode(), i) for i in range(n))


def _mutate(rng: random.Random, base: bytes, kind: str) -> bytes:
    b = bytearray(base)
    at = rng.randrange(max(1, len(b)))
    if kind == "byteflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "truncate":
        return bytes(b[:at])
    if kind == "huge_field":
        return bytes(b[:at]) + b"x" * rng.choice([70_000, 300_000, 1_500_000]) + bytes(b[at:])
    if kind == "nul":
        return bytes(b[:at]) + b"\0" * rng.randint(1, 5) + bytes(b[at:])
    if kind == "bom":
        return bytes(b[:at]) + b"\xef\xbb\xbf" + bytes(b[at:])
    if kind == "double_bom":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + base
    if kind == "utf16":
        return base.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
    if kind == "cr_only":
        return base.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    if kind == "mixed_eol":
        return base.replace(b"\n", b"\r\n", 1).replace(b"\n", b"\r", 2)
    if kind == "deep_quote":
        return bytes(b[:at]) + b'"' * rng.choice([1, 3, 999, 10_001]) + bytes(b[at:])
    if kind == "long_line":
        return base.rstrip(b"\r\n") + b"," * rng.choice([10_000, 200_000]) + b"y" * 100_000
    if kind == "escape_names":
        evil = rng.choice(["\x1b[2J\x1b[HA", "\x1b]0;pwned\x07B", "\u202eevil\u202c", "\u2066x\u2069", "\x9b31mC",
                           "\x1b[31;1m", "\u200b", "\ufeff", "a\x08\x08\x08b", "\x1b]8;;http://x\x1b\\y"]).encode()
        lines = base.split(b"\n")
        if len(lines) > 1:
            cells = lines[1].split(b",")
            cells[min(1, len(cells) - 1)] += evil
            lines[1] = b",".join(cells)
        return b"\n".join(lines)
    if kind == "formula":
        lines = base.split(b"\n")
        if len(lines) > 1:
            cells = lines[1].split(b",")
            cells[rng.randrange(len(cells))] = rng.choice([b"=cmd|' /C calc'!A0", b"+1+1", b"-2+3", b"@SUM(1)",
                                                           b"=HYPERLINK(\"http://x\")", b"\t=1"])
            lines[1] = b",".join(cells)
        return b"\n".join(lines)
    if kind == "header_dup":
        first, _, rest = base.partition(b"\n")
        return first + b"," + first + b"\n" + rest
    if kind == "many_columns":
        first, _, rest = base.partition(b"\n")
        return first + b"".join(b",c%d" % i for i in range(rng.choice([300, 20_000]))) + b"\n" + rest
    if kind == "no_header":
        return base.partition(b"\n")[2]
    if kind == "semicolon":
        return base.replace(b",", b";")
    if kind == "latin1":
        return base.decode("utf-8", "replace").encode("latin-1", "replace")
    if kind == "surrogates":
        return bytes(b[:at]) + b"\xed\xa0\x80" + bytes(b[at:])
    if kind == "overlong":
        return bytes(b[:at]) + b"\xc0\xaf\xe0\x80\xaf" + bytes(b[at:])
    if kind == "numbers":
        return base.replace(b"2026-10-01", rng.choice([b"2026-02-30", b"99999-01-01", b"1e308", b"NaN", b"-0"]))
    raise ValueError(kind)


KINDS = ["byteflip", "truncate", "huge_field", "nul", "bom", "double_bom", "utf16", "cr_only", "mixed_eol",
         "deep_quote", "long_line", "escape_names", "formula", "header_dup", "many_columns", "no_header",
         "semicolon", "latin1", "surrogates", "overlong", "numbers"]


def make_inputs(folder: Path, count: int, seed: int) -> list[tuple[str, Path]]:
    """`count` mutated files plus the special ones (0-byte, binary, symlinks, FIFO, folder, /dev/zero)."""
    rng = random.Random(seed)
    bases = _bases()
    made: list[tuple[str, Path]] = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        path = folder / f"m{i:04d}-{kind}.csv"
        path.write_bytes(_mutate(rng, rng.choice(bases), kind))
        made.append((kind, path))
    specials = {"empty": b"", "binary": bytes(rng.randrange(256) for _ in range(4096)),
                "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "gzip": b"\x1f\x8b\x08\x00" + b"\xff" * 100,
                "only_bom": b"\xef\xbb\xbf", "only_newlines": b"\n" * 1000, "only_header": bases[0].partition(b"\n")[0]}
    for name, data in specials.items():
        path = folder / f"s-{name}.csv"
        path.write_bytes(data)
        made.append((name, path))
    target = folder / "s-target.csv"
    target.write_bytes(bases[0])
    links = {"symlink": target, "dangling": folder / "nowhere.csv", "devzero": Path("/dev/zero"),
             "devnull": Path("/dev/null")}
    for name, dest in links.items():
        (folder / f"l-{name}.csv").symlink_to(dest)
        made.append((name, folder / f"l-{name}.csv"))
    (folder / "l-loop-a.csv").symlink_to(folder / "l-loop-b.csv")
    (folder / "l-loop-b.csv").symlink_to(folder / "l-loop-a.csv")
    made.append(("symlink_loop", folder / "l-loop-a.csv"))
    os.mkfifo(folder / "f-fifo.csv")
    made.append(("fifo", folder / "f-fifo.csv"))
    (folder / "d-folder.csv").mkdir()
    made.append(("folder", folder / "d-folder.csv"))
    weird = folder / ("n-" + "\u202e" + "vsc.exe\x1b[2J" + ".csv")
    weird.write_bytes(bases[0])
    made.append(("hostile_name", weird))
    return made


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Every entry below the folders: type, size, mtime, and the sha256 of regular files (never opens a FIFO)."""
    seen: dict[str, tuple] = {}
    for top in folders:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                digest = ""
                if stat.S_ISREG(st.st_mode) and st.st_size < 64 << 20:
                    with open(path, "rb") as fh:
                        digest = hashlib.sha256(fh.read()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    digest = os.readlink(path)
                seen[path] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest)
    return seen


def check_run(f: Findings, run: Run, label: str) -> None:
    text = run.out + run.err
    if run.code is None:
        f.bad(f"{label}: timed out after {CMD_TIMEOUT:g}s")
    elif run.code == 70:
        f.bad(f"{label}: exit 70: {run.err.strip()[-300:]}")
    elif run.code < 0:
        f.bad(f"{label}: killed by signal {-run.code}")
    if "Traceback (most recent call last)" in text:
        f.bad(f"{label}: traceback: {text[text.index('Traceback'):][:600]}")


def unlock_if_held(lms, f: Findings) -> None:
    """A mutated file that hangs the importer keeps the lock: unlock it so the next submit is tested too."""
    with lms.client() as c:
        for importer in ("course", "global"):
            lock = c.get(f"/locks/{importer}").json()
            if lock.get("locked") and lock.get("import_id"):
                c.post(f"/locks/{importer}/unlock", json={"import_id": lock["import_id"]})


def commands_for(path: Path, out: Path) -> list[tuple[str, list[str]]]:
    p = str(path)
    return [("validate", ["validate", "--offline", p]),
            ("validate_json", ["validate", "--offline", "--json", p]),
            ("fix_sanitize", ["fix", p, "--out", str(out), "--sanitize", "--offline"]),
            ("fix_split", ["fix", p, "--out", str(out), "--split-credit-types", "--offline"]),
            ("fix_completion_only", ["fix", p, "--out", str(out), "--completion-only", "--course", COURSE]),
            ("submit", ["submit", p, "--course", COURSE, "--yes"])]


def mutated_files(ws: Workspace, lms, token: str, count: int, seed: int, budget_s: float, f: Findings,
                  labels: tuple[str, ...] | None = None) -> None:
    inputs = make_inputs(ws.root / "inputs", count, seed)
    env = ws.env(token)
    deadline = time.monotonic() + budget_s
    runs = codes = 0
    by_code: dict[str, int] = {}
    files_done = 0
    for kind, path in inputs:
        if time.monotonic() > deadline:
            break
        files_done += 1
        out = ws.root / "outs" / "fixed.csv"
        for label, argv in commands_for(path, out):
            if labels and label not in labels:
                continue
            before = snapshot(ws.root / "inputs", ws.root / "outs", ws.root / "cwd", ws.root / "home")
            run = ws.run(argv, env, stdin=b"n\n")
            after = snapshot(ws.root / "inputs", ws.root / "outs", ws.root / "cwd", ws.root / "home")
            runs += 1
            by_code[str(run.code)] = by_code.get(str(run.code), 0) + 1
            check_run(f, run, f"{label} {path.name} ({kind})")
            allowed = {str(out), str(out) + ".manifest.csv"}
            for changed in sorted(set(before.items()) ^ set(after.items())):
                if changed[0] not in allowed:
                    f.bad(f"{label} {path.name} ({kind}): wrote outside --out and its manifest: {changed[0]}")
                    break
            for leftover in (out, Path(str(out) + ".manifest.csv")):
                leftover.unlink(missing_ok=True)
            if label == "submit":
                unlock_if_held(lms, f)
        codes += 1
    f.figures["mutated_files"] = files_done
    f.figures["mutated_files_made"] = len(inputs)
    f.figures["mutated_runs"] = runs
    f.figures["mutated_exit_codes"] = by_code
    with sqlite3.connect(lms.db_path) as db:
        f.figures["imports_created_by_submit"] = db.execute("SELECT count(*) FROM imports").fetchone()[0]


# ---------------------------------------------------------------- memory

def peak_rss(ws: Workspace, token: str, big_mib: int, f: Findings, online_mib: int = 16) -> None:
    """Peak RSS of validate and fix --sanitize at two sizes, and of validate against the LMS at two smaller
    ones (every row a learner the LMS is asked about): it must not grow with the file."""
    rows_small = _rows(1)
    per_row = len(rows_small) - rows_small.index(b"\n") - 1
    figures = {}
    for mib in (big_mib // 4, big_mib):
        path = ws.root / "inputs" / f"big-{mib}.csv"
        with open(path, "wb") as fh:
            fh.write(_rows(0, name="Zo\u00eb"))
            rows = (mib << 20) // per_row
            for start in range(0, rows, 10_000):
                fh.write(b"".join(b"U%07d,Zo\xc3\xab\xc2\xa0,Last%d,2026-09-01,1,2026-10-01,,,\n" % (i, i)
                                  for i in range(start, min(rows, start + 10_000))))
        for label, argv in (("validate", ["validate", "--offline", str(path)]),
                            ("fix_sanitize", ["fix", str(path), "--out", str(ws.root / "outs" / "big.csv"),
                                              "--sanitize", "--offline"])):
            rss_file = ws.root / "rss"
            rss_file.unlink(missing_ok=True)
            run = ws.run(argv, ws.env(None, rss_file=rss_file), timeout=600)
            check_run(f, run, f"{label} {path.name}")
            figures[f"{label}_{mib}MiB_peak_MiB"] = round((run.rss_kib or 0) / 1024, 1)
            for leftover in ws.root.joinpath("outs").iterdir():
                leftover.unlink()
        path.unlink()
    for mib in (online_mib // 4, online_mib):
        path = ws.root / "inputs" / f"online-{mib}.csv"
        with open(path, "wb") as fh:
            fh.write(_rows(0))
            rows = (mib << 20) // per_row
            for start in range(0, rows, 10_000):
                fh.write(b"".join(b"U%07d,Zoe,Last%d,2026-09-01,1,2026-10-01,,,\n" % (i, i)
                                  for i in range(start, min(rows, start + 10_000))))
        rss_file = ws.root / "rss"
        rss_file.unlink(missing_ok=True)
        run = ws.run(["validate", str(path), "--course", COURSE, "--json"], ws.env(token, rss_file=rss_file), timeout=600)
        check_run(f, run, f"validate (LMS) {path.name}")
        figures[f"validate_online_{mib}MiB_peak_MiB"] = round((run.rss_kib or 0) / 1024, 1)
        path.unlink()
    line = ws.root / "inputs" / "big-line.csv"
    line.write_bytes(_rows(0) + b"U1," + b"z" * (big_mib << 20) + b"\n")
    rss_file = ws.root / "rss"
    run = ws.run(["validate", "--offline", str(line)], ws.env(None, rss_file=rss_file), timeout=600)
    check_run(f, run, "validate one huge line")
    figures[f"validate_{big_mib}MiB_one_line_peak_MiB"] = round((run.rss_kib or 0) / 1024, 1)
    line.unlink()
    f.figures["peak_rss"] = figures
    if figures[f"validate_{big_mib}MiB_one_line_peak_MiB"] > 2 * big_mib + 100:
        f.bad(f"validate: one {big_mib} MiB line peaks at {figures[f'validate_{big_mib}MiB_one_line_peak_MiB']} MiB")
    for label, mib in (("validate", big_mib), ("fix_sanitize", big_mib), ("validate_online", online_mib)):
        small, large = figures[f"{label}_{mib // 4}MiB_peak_MiB"], figures[f"{label}_{mib}MiB_peak_MiB"]
        if large > small * 1.5 + 20:
            f.bad(f"{label}: peak RSS grows with the file: {small} MiB at {mib // 4} MiB, {large} MiB at {mib} MiB")


def server_upload_rss(lms, big_mib: int, f: Findings) -> None:
    """The reference LMS receiving a large upload: its peak RSS against the file's size."""
    path = Path(tempfile.mkstemp(suffix=".csv")[1])
    try:
        with open(path, "wb") as fh:
            fh.write(_rows(0))
            fh.write(b"U1," + b"q" * (big_mib << 20) + b"\n")
        with open(path, "rb") as fh:
            r = httpx.post(lms.url("/imports"), headers=lms.auth(), data={"importer": "course", "course": COURSE},
                           files={"file": ("big.csv", fh, "text/csv")}, timeout=300)
        hwm = 0
        for line in open(f"/proc/{lms.process.pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        f.figures[f"server_upload_{big_mib}MiB_status"] = r.status_code
        f.figures[f"server_upload_{big_mib}MiB_peak_MiB"] = round(hwm / 1024, 1)
        if r.status_code >= 500:
            f.bad(f"server: {r.status_code} on a {big_mib} MiB upload")
        if hwm / 1024 > big_mib + 150:
            f.bad(f"server: peak RSS {hwm / 1024:.0f} MiB after a {big_mib} MiB upload")
        if r.status_code in (200, 201):
            lms.wait_import(r.json()["id"], timeout=120)
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- token leaks

def leak_hunt(ws: Workspace, lms, token: str, f: Findings) -> None:
    """Every command with the token in the environment, then in a keyring, with DEBUG logging and one forced crash;
    the token must appear in no output, log, journal, crash report or file under the workspace."""
    clean = EXAMPLES / "course-import-clean.csv"
    hang = EXAMPLES / "hangs-the-importer.csv"
    credit = EXAMPLES / "rule-imported-credit-not-reported.csv"
    outs = str(ws.root / "outs")
    commands = [["config", "validate"], ["validate", str(clean), "--course", COURSE],
                ["validate", str(clean), "--course", COURSE, "--json"],
                ["fix", str(credit), "--out", str(ws.root / "outs" / "co.csv"), "--completion-only", "--course", COURSE],
                ["submit", str(clean), "--course", COURSE, "--yes"], ["submit", str(hang), "--course", COURSE, "--yes"],
                ["imports"], ["imports", "--json"], ["journal"], ["journal", "--json"], ["journal", "--reconcile"],
                ["__hang__"], ["watch", "{ID}", "--json"], ["diagnose", "{ID}"], ["diagnose", "{ID}", "--json"],
                ["unlock", "{ID}", "--json"], ["recover", "{ID}", "--yes", "--json"], ["__hang__"],
                ["unlock", "{ID}", "--yes"], ["reimport", "{ID}", "--yes"],
                ["credit-fix", "--course", COURSE, "--date", "today", "--out", outs], ["credit-fix", "--course", COURSE, "--date", "today", "--json", "--out", outs],
                ["imports", "--profile", "nope"], ["logout"]]
    backends = ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring", "adv_keyring.FileKeyring"]
    runs = []
    n = 0
    for backend in backends:
        for where in ("env", "keyring"):
            if where == "keyring" and backend != "adv_keyring.FileKeyring":
                continue
            if where == "keyring":
                Path(ws.env()["ADV_KEYRING_FILE"]).write_text(json.dumps({"importconsole:lms:admin": token}))
                login = ws.run(["login"], ws.env(None, keyring_backend=backend), stdin=(token + "\n").encode())
                runs.append(login)
            unlock_if_held(lms, f)
            for argv in commands:
                n += 1
                with sqlite3.connect(lms.db_path) as db:
                    last = db.execute("SELECT max(id) FROM imports").fetchone()[0] or 1
                if argv == ["__hang__"]:  # a hung import (the file errors, so upload it as it is) for diagnose/unlock
                    unlock_if_held(lms, f)
                    lms.submit(hang.read_bytes(), course=COURSE, file_name=hang.name)
                    time.sleep(1)
                    continue
                argv = [str(last) if a == "{ID}" else a for a in argv]
                argv = [a.replace("co.csv", f"co-{n}.csv") for a in argv]
                log = ws.root / "state" / f"debug-{n}.log"
                env = ws.env(token if where == "env" else None, keyring_backend=backend, debug_log=log)
                if argv[0] == "watch":
                    run = ws.run(argv, env, timeout=8)
                    run.code = run.code if run.code is not None else 0  # watch follows forever: bounded here
                else:
                    run = ws.run(argv, env, stdin=b"n\n")
                runs.append(run)
                if os.environ.get("ADV_VERBOSE"):
                    print(run.code, argv, (run.out + run.err).strip()[-300:], flush=True)
                check_run(f, run, f"leak hunt {backend} {where}: {' '.join(argv)}")
            if where == "keyring":  # `logout` above removed it
                Path(ws.env()["ADV_KEYRING_FILE"]).write_text(json.dumps({"importconsole:lms:admin": token}))
            crash = ws.run(["imports"], ws.env(token if where == "env" else None, keyring_backend=backend, crash=True))
            runs.append(crash)
            if crash.code != 70:
                f.bad(f"forced crash: expected exit 70 with a crash report, got {crash.code}")
    hits = []
    for run in runs:
        if token in run.out or token in run.err:
            hits.append(f"output of {' '.join(run.argv)}")
    for dirpath, _, filenames in os.walk(ws.root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.parent.name == "keyring" or path.is_symlink() or not path.is_file():
                continue
            try:
                if token.encode() in path.read_bytes():
                    hits.append(str(path.relative_to(ws.root)))
            except OSError:
                pass
    crash_reports = list((ws.root / "state").rglob("crash*"))
    f.figures["leak_commands"] = len(runs)
    codes: dict[str, int] = {}
    for run in runs:
        codes[str(run.code)] = codes.get(str(run.code), 0) + 1
    f.figures["leak_exit_codes"] = codes
    f.figures["leak_crash_reports"] = len(crash_reports)
    f.figures["leak_debug_logs_bytes"] = sum(p.stat().st_size for p in (ws.root / "state").glob("debug-*.log"))
    for hit in hits:
        f.bad(f"token found in {hit}")


# ---------------------------------------------------------------- names from the LMS

HOSTILE_NAMES = ["\x1b[2J\x1b[Hx.csv", "\u202egpj.csv", "a\x07\x08b.csv", "\x9b31mc.csv", "z\x1b]0;title\x07.csv",
                 "..", "x/../../etc/passwd", "n" * 300 + ".csv"]
RAW_CONTROLS = ("\x1b", "\u202e", "\x07", "\x08", "\x9b")


def hostile_names(ws: Workspace, lms, token: str, f: Findings) -> None:
    """Imports whose file names (chosen by the uploader) carry escape sequences, bidi controls or path parts:
    what the console prints about them carries no raw control character, and no command ends in exit 70."""
    hang = (EXAMPLES / "hangs-the-importer.csv").read_bytes()
    ids = []
    for name in HOSTILE_NAMES:
        unlock_if_held(lms, f)
        r = lms.submit(hang, course=COURSE, file_name=name)
        ids.append(r.json()["id"])
        time.sleep(0.5)
    env = ws.env(token)
    last = str(ids[-1])
    runs = 0
    for argv in (["imports"], ["imports", "--json"], ["watch", last, "--json", "--hung-after", "2"],
                 ["watch", last, "--hung-after", "2"], ["diagnose", last], ["diagnose", last, "--json"],
                 ["unlock", last], ["unlock", last, "--json"], ["journal"], ["recover", last, "--json"],
                 *[["diagnose", str(i)] for i in ids[:-1]], ["reimport", str(ids[0])], ["recover", last, "--yes"]):
        run = ws.run(argv, env, stdin=b"n\n")
        runs += 1
        check_run(f, run, f"hostile names: {' '.join(argv)}")
        raw = [hex(ord(c)) for c in RAW_CONTROLS if c in run.out + run.err]
        if raw:
            f.bad(f"hostile names: {' '.join(argv)} printed raw control characters {raw}")
    unlock_if_held(lms, f)
    f.figures["hostile_name_imports"] = len(ids)
    f.figures["hostile_name_commands"] = runs


# ---------------------------------------------------------------- API probes

def api_probes(lms, f: Findings) -> None:
    """Malformed bodies, wrong types, huge headers, odd ids and missing auth on every route: never a 500."""
    admin = lms.auth()
    get_routes = ["/me", "/credit-types", "/courses", "/courses/1", "/credit-records", "/reporting-queue",
                  "/reports/pars", "/imports", "/imports/1", "/imports/1/rows", "/imports/1/remaining",
                  "/imports/1/file", "/locks", "/locks/course", "/openapi.json"]
    post_routes = ["/courses/lookup", "/users", "/users/lookup", "/enrollments/lookup", "/imports",
                   "/locks/course/unlock", "/_faults"]
    odd_ids = ["0", "-1", "99999999999999999999999", "1e3", "%00", "..", "%2e%2e", "\u0661", "1%0a", " 1", "1.0",
               "0x1", "9" * 400]
    bodies = [b"", b"{", b"null", b"[]", b"\"x\"", b"1e999999", b"{\"external_ids\": 5}", b"[" * 100_000,
              b"{\"external_user_ids\": [1, {}, null]}", b"{\"import_id\": \"1\"}", b"{\"import_id\": 1e400}",
              b"{\"keys\": [{\"course_external_id\": []}]}", b"{\"email\": \"\\ud800\"}", b"\xff\xfe",
              b"{\"first_name\": \"" + b"a" * 2_000_000 + b"\"}", b"{\"external_ids\": [" + b"\"a\"," * 5000 + b"\"a\"]}"]
    queries = ["?limit=-1", "?limit=abc", "?offset=1e100", "?limit=\u0661\u0660", "?offset=-5", "?state=%00",
               "?limit=99999999999999999999", "?complete=maybe", "?user_id=x", "?external_id=" + "a" * 8000]
    probes: list[tuple[str, str, dict, bytes | None]] = []
    for route in get_routes + post_routes:
        method = "POST" if route in post_routes else "GET"
        probes.append((method, route, {}, b"{}"))
        probes.append((method, route, {"Authorization": "Bearer nope"}, b"{}"))
        probes.append((method, route, {"Authorization": "Basic YWRtaW46YWRtaW4="}, b"{}"))
        probes.append((method, route, {"Authorization": "Bearer " + lms.course_admin_token}, b"{}"))
    for route in ("/courses/{}", "/imports/{}", "/imports/{}/rows", "/imports/{}/remaining", "/imports/{}/file",
                  "/locks/{}", "/locks/{}/unlock"):
        for odd in odd_ids:
            probes.append(("POST" if route.endswith("unlock") else "GET", route.format(odd), admin, b"{\"import_id\": 1}"))
    for route in post_routes:
        for body in bodies:
            probes.append(("POST", route, {**admin, "Content-Type": "application/json"}, body))
    for route in ("/courses", "/credit-records", "/imports", "/imports/1/rows", "/reporting-queue"):
        for q in queries:
            probes.append(("GET", route + q, admin, None))
    for size in (8_000, 60_000, 200_000):
        probes.append(("GET", "/me", {**admin, "X-Huge": "h" * size}, None))
    probes.append(("GET", "/me", {**admin, **{f"X-H{i}": "v" for i in range(300)}}, None))
    for key in (b"\x01", b"a" * 201, b"", b" ", "k\u00e9".encode(), b"k\x7f", b"\xff"):
        probes.append(("POST", "/imports", {**admin, "Idempotency-Key": key}, None))
    multipart = [b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../x\"\r\n\r\nabc\r\n--b--\r\n",
                 b"--b\r\nContent-Disposition: form-data; name=\"importer\"\r\n\r\ncourse\r\n",  # never closed
                 b"garbage", b"--b--\r\n"]
    for body in multipart:
        probes.append(("POST", "/imports", {**admin, "Content-Type": "multipart/form-data; boundary=b"}, body))
    probes.append(("POST", "/imports", {**admin, "Content-Type": "multipart/form-data"}, b"x"))
    count = fives = dropped = 0
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=20) as c:
        for method, route, headers, body in probes:
            count += 1
            try:
                safe_headers = {k: v for k, v in headers.items()}
                url = lms.url("") + route
                if method == "POST" and route == "/imports" and body is None:
                    r = c.post(url, headers=safe_headers, data={"importer": "course", "course": COURSE},
                               files={"file": ("a.csv", b"external_user_id\nU1\n", "text/csv")})
                else:
                    r = c.request(method, url, headers=safe_headers, content=body)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                if r.status_code >= 500:
                    fives += 1
                    f.bad(f"probe {method} {route[:80]} body {(body or b'')[:40]!r}: {r.status_code} {r.text[:200]}")
                if route in [p for p in get_routes + post_routes] and "Authorization" not in headers \
                        and r.status_code != 401 and route not in ("/openapi.json", "/_faults"):
                    f.bad(f"probe {method} {route} without a token: {r.status_code}")
            except (httpx.LocalProtocolError, httpx.InvalidURL) as exc:
                statuses["refused_by_client"] = statuses.get("refused_by_client", 0) + 1
                _ = exc
            except httpx.HTTPError as exc:
                dropped += 1
                f.bad(f"probe {method} {route[:80]}: connection failed: {exc!r}")
            if lms.process.poll() is not None:
                f.bad(f"probe {method} {route[:80]}: the server died")
                return
    unlock_if_held(lms, f)
    f.figures["api_probes"] = count
    f.figures["api_probe_statuses"] = statuses


# ---------------------------------------------------------------- kill -9

def kills(ws: Workspace, token: str, f: Findings, rounds: int = 3) -> None:
    """kill -9 of the server mid-import and of the CLI mid-submit; then `submit` again must end with exactly one import."""
    results = []
    for round_ in range(rounds):
        for victim in ("server", "cli"):
            lms = start_sandbox("demo", rows_per_second=400)
            try:
                with sqlite3.connect(lms.db_path) as db:
                    db.execute("INSERT INTO tokens VALUES (?, 'admin', 'site_admin', 'Adversary Admin')", (token,))
                ws.set_lms(lms.base_url)
                path = ws.root / "inputs" / f"kill-{victim}-{round_}.csv"
                path.write_bytes(_rows(3000 + round_, name=f"K{victim}{round_}"))
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                env = ws.env(token)
                proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, "submit", str(path), "--course", COURSE,
                                         "--yes", "--watch"], cwd=ws.root / "cwd", env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
                delay = [0.3, 0.8, 1.5][round_ % 3]
                time.sleep(delay)
                if victim == "server":
                    lms.kill()
                    lms.start(port=int(lms.base_url.rsplit(":", 1)[1]))
                    try:
                        proc.communicate(timeout=60)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.communicate()
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()
                reconcile = ws.run(["journal", "--reconcile"], env)
                check_run(f, reconcile, f"journal --reconcile after kill -9 of the {victim}")
                count = "SELECT count(*) FROM imports WHERE file_sha256 = ?"
                with sqlite3.connect(lms.db_path) as db:
                    before = db.execute(count, (digest,)).fetchone()[0]
                # What an admin does next: submit again; it must say the file went in already, or send it once.
                again = ws.run(["submit", str(path), "--course", COURSE], env, stdin=b"n\n")
                check_run(f, again, f"submit after kill -9 of the {victim} ({delay}s)")
                with sqlite3.connect(lms.db_path) as db:
                    after_plain = db.execute(count, (digest,)).fetchone()[0]
                if after_plain == 0:  # it refused on warnings only: the admin confirms
                    again = ws.run(["submit", str(path), "--course", COURSE, "--yes"], env, stdin=b"n\n")
                    check_run(f, again, f"submit --yes after kill -9 of the {victim} ({delay}s)")
                with sqlite3.connect(lms.db_path) as db:
                    n = db.execute(count, (digest,)).fetchone()[0]
                results.append({"victim": victim, "after_s": delay, "imports_after_kill": before, "imports": n,
                                "resubmit_exit": again.code})
                if n != 1:
                    f.bad(f"kill -9 of the {victim} after {delay}s, then submit again: {n} imports of the file "
                          f"(exit {again.code}: {again.out.strip()[-200:]} {again.err.strip()[-200:]})")
            finally:
                lms.close()
    f.figures["kills"] = results


# ---------------------------------------------------------------- main

def run_all(args) -> Findings:
    f = Findings()
    token = "adv-" + os.urandom(16).hex()
    with tempfile.TemporaryDirectory(prefix="importconsole-adv-") as tmp:
        ws = Workspace(Path(tmp))
        lms = start_sandbox("demo", rows_per_second=0)
        try:
            with sqlite3.connect(lms.db_path) as db:
                db.execute("INSERT INTO tokens VALUES (?, 'admin', 'site_admin', 'Adversary Admin')", (token,))
            ws.set_lms(lms.base_url)
            lms.tokens["site_admin"] = token
            started = time.monotonic()
            if "files" in args.parts:
                mutated_files(ws, lms, token, args.files, args.seed, args.minutes * 60, f)
                print("mutated files:", json.dumps({k: v for k, v in f.figures.items() if k.startswith(("mutated", "imports"))}), flush=True)
            if "leaks" in args.parts:
                leak_hunt(ws, lms, token, f)
                print("leak hunt:", f.figures.get("leak_commands"), "commands", flush=True)
            if "names" in args.parts:
                hostile_names(ws, lms, token, f)
                print("hostile names:", f.figures.get("hostile_name_commands"), "commands", flush=True)
            if "probes" in args.parts:
                api_probes(lms, f)
                print("api probes:", f.figures.get("api_probes"), f.figures.get("api_probe_statuses"), flush=True)
            if "memory" in args.parts and args.big_mib:
                peak_rss(ws, token, args.big_mib, f)
                server_upload_rss(lms, args.big_mib, f)
                print("memory:", json.dumps(f.figures.get("peak_rss")), flush=True)
            f.figures["seconds_files_leaks_probes_memory"] = round(time.monotonic() - started, 1)
        finally:
            lms.close()
        if "kills" in args.parts:
            kills(ws, token, f, rounds=args.kill_rounds)
            print("kills:", json.dumps(f.figures.get("kills")), flush=True)
    return f


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=300)
    p.add_argument("--minutes", type=float, default=20.0, help="time budget for the mutated files")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--big-mib", type=int, default=64, help="size of the large inputs (0: skip memory)")
    p.add_argument("--kill-rounds", type=int, default=3)
    p.add_argument("--parts", default="files,leaks,names,probes,memory,kills")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    args.parts = set(args.parts.split(","))
    f = run_all(args)
    summary = {"figures": f.figures, "broke": f.broke}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 1 if f.broke else 0


if __name__ == "__main__":
    sys.exit(main())
