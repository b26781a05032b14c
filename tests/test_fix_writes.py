"""Where `fix` writes (issue 12, items 3 and 5): only a new --out and its manifest, never through
a symlink, never over a file that appears while it runs; paths that cannot be used (symlink
loops, names too long) and inputs that are not regular files (a FIFO) are sentences with exit 2,
never exit 70 and never a wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.wait import wait_for

from importconsole.cli import main

ROOT = Path(__file__).resolve().parents[1]
H = b"external_email,first_name\n"


def records(tmp_path: Path, rows: int = 2) -> Path:
    path = tmp_path / "in.csv"
    path.write_bytes(H + b"".join(b"l%d@example.org,An\xe2\x80\x8bn\n" % n for n in range(rows)))
    return path


def test_a_dangling_symlink_at_the_manifest_path_is_refused_and_its_target_never_made(tmp_path, capsys):
    target = tmp_path / "elsewhere" / "planted.csv"
    target.parent.mkdir()
    (tmp_path / "out.csv.manifest.csv").symlink_to(target)
    assert main(["fix", str(records(tmp_path)), "--out", str(tmp_path / "out.csv"), "--sanitize"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not target.exists() and not (tmp_path / "out.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "in.csv", "out.csv.manifest.csv"]


@pytest.mark.parametrize("where", ["input", "out", "out-folder"])
def test_a_symlink_loop_is_a_sentence_and_exit_2(tmp_path, capsys, where):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    source = tmp_path / "loop1" if where == "input" else records(tmp_path)
    out = {"input": tmp_path / "o.csv", "out": tmp_path / "loop1", "out-folder": tmp_path / "loop1" / "o.csv"}[where]
    assert main(["fix", str(source), "--out", str(out), "--sanitize"]) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err and err.strip(), err
    assert ("loop" in err) or ("already exists" in err)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.manifest.csv").exists()


@pytest.mark.parametrize("out", ["", ".", "..", "/"])
def test_an_out_that_names_no_file_is_a_sentence_and_exit_2(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    assert main(["fix", str(records(tmp_path)), "--out", out, "--sanitize"]) == 2
    err = capsys.readouterr().err
    assert ("names no file" in err or "already exists" in err) and "unexpected" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("length", [300, 250])  # --out too long; --out fine but its manifest too long
def test_an_over_long_out_is_a_sentence_and_exit_2(tmp_path, capsys, length):
    out = tmp_path / ("x" * length)
    assert main(["fix", str(records(tmp_path)), "--out", str(out), "--sanitize"]) == 2
    err = capsys.readouterr().err
    assert "too long" in err and "unexpected" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def _start_a_long_fix(tmp_path: Path):
    """fix --sanitize of a file big enough that it runs a while after it has made its manifest."""
    source = tmp_path / "big.csv"
    with open(source, "wb") as fh:
        fh.write(H)
        for block in range(40):
            fh.write(b"".join(b"l%d@example.org,An\xe2\x80\x8bn\n" % n for n in range(block * 5000, block * 5000 + 5000)))
    out = tmp_path / "out.csv"
    manifest = tmp_path / "out.csv.manifest.csv"
    proc = subprocess.Popen([sys.executable, "-m", "importconsole", "fix", str(source), "--out", str(out), "--sanitize"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wait_for(manifest.exists, timeout=30, interval=0.002, message="fix to start writing")
    return proc, out, manifest


def test_a_file_put_at_the_manifest_path_while_fix_runs_is_never_replaced(tmp_path):
    proc, out, manifest = _start_a_long_fix(tmp_path)
    manifest.unlink()  # someone removes fix's manifest and puts their own file there
    manifest.write_bytes(b"someone else's file\n")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, (stdout, stderr)
    assert "was removed or replaced while fix was running" in stderr and "no fixed copy was written" in stderr
    assert manifest.read_bytes() == b"someone else's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "out.csv.manifest.csv"]


def test_a_file_that_appears_at_out_while_fix_runs_is_never_replaced(tmp_path):
    proc, out, manifest = _start_a_long_fix(tmp_path)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL)  # fails if fix were already done
    os.write(fd, b"someone else's file\n")
    os.close(fd)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, (stdout, stderr)
    assert "appeared while fix was running" in stderr and "no fixed copy was written" in stderr
    assert out.read_bytes() == b"someone else's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "out.csv"]  # no manifest, no temporary file


@pytest.mark.parametrize("command", [["validate", "--offline"], ["fix", "--sanitize", "--out", "OUT"]])
def test_a_fifo_is_refused_before_it_is_opened(tmp_path, command):
    fifo = tmp_path / "records.csv"
    os.mkfifo(fifo)
    argv = [a if a != "OUT" else str(tmp_path / "o.csv") for a in command]
    started = time.monotonic()
    # Nobody ever writes to the FIFO: opening it would wait forever.
    done = subprocess.run([sys.executable, "-m", "importconsole", argv[0], str(fifo), *argv[1:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert done.returncode == 2, done
    assert "named pipe (FIFO), not a regular file" in done.stderr and "unexpected" not in done.stderr
    assert time.monotonic() - started < 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.csv"]


def test_credit_fix_refuses_a_fifo_as_validate_does_not_as_a_missing_file(tmp_path):
    """`credit-fix --file FIFO` said "no such file": the file is there, it is not a regular file."""
    fifo = tmp_path / "records.csv"
    os.mkfifo(fifo)
    (tmp_path / "exports").mkdir()
    said = {}
    for name in ("records.csv", "exports", "nope.csv"):
        done = subprocess.run([sys.executable, "-m", "importconsole", "credit-fix", "--file", str(tmp_path / name),
                               "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=20)
        assert done.returncode == 2 and "unexpected" not in done.stderr, done
        said[name] = done.stderr
    assert "named pipe (FIFO), not a regular file" in said["records.csv"] and "no such file" not in said["records.csv"]
    assert "this is a folder, not a file" in said["exports"]
    assert f"{tmp_path / 'nope.csv'}: no such file" in said["nope.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "records.csv"]  # nothing written, nothing asked


def test_submit_refuses_a_fifo_before_opening_it(tmp_path, monkeypatch, capsys):
    from helpers.sandbox import dataset, start_sandbox
    from helpers.profiles import cli_env

    fifo = tmp_path / "records.csv"
    os.mkfifo(fifo)
    with start_sandbox(dataset()) as lms:
        cli_env(monkeypatch, tmp_path, lms)
        assert main(["submit", str(fifo), "--course", "C-FIXED", "--yes"]) == 2
        err = capsys.readouterr().err
        assert "named pipe (FIFO), not a regular file" in err and "Nothing was sent" in err
        assert lms.db().execute("SELECT count(*) FROM imports").fetchone()[0] == 0


async def test_completion_only_writes_each_completion_row_once(tmp_path):
    """Two identical rows become one completion row: the second is removed and the manifest says
    so (rows written are remembered by a digest, not kept whole)."""
    import asyncio
    import csv

    from helpers.sandbox import ADMIN_TOKEN, dataset, start_sandbox

    from importconsole.importfile.fixes import write_fixed_file
    from importconsole.lms.client import LmsClient
    from importconsole.lms.facts import ApiFacts

    path = tmp_path / "in.csv"
    path.write_bytes(b"external_user_id,complete,date_completed,credit_type,credits\n"
                     b"u1,1,2026-03-01,ama,1.0\nu1,1,2026-03-01,ama,1.0\nu2,1,2026-03-01,ama,1.0\n")
    fixed = tmp_path / "fixed.csv"
    with start_sandbox(dataset()) as lms:
        async with LmsClient(lms.base_url, ADMIN_TOKEN) as client:
            facts = ApiFacts(client, asyncio.get_running_loop())
            manifest = await asyncio.to_thread(write_fixed_file, path, fixed, completion_only=True, facts=facts,
                                               course_external_id="C-FIXED")
    assert fixed.read_bytes().splitlines()[1:] == [b"u1,1,2026-03-01,,", b"u2,1,2026-03-01,,"]
    assert manifest.rows_written == 2 and manifest.completion_only_rows == [1, 2, 3]
    kinds = [r[3] for r in csv.reader((tmp_path / "fixed.csv.manifest.csv").open(encoding="utf-8"))][1:]
    assert kinds.count("duplicate-removed") == 1 and kinds.count("completion-only") == 3


def test_fix_sanitize_trims_the_id_column_the_lms_reads_when_a_column_is_named_twice(tmp_path, capsys):
    """The LMS reads the last `external_email` of a row (cells mapped by name, the later over the
    earlier): `fix --sanitize` trims that one, so the copy names the learner the LMS will match."""
    path = tmp_path / "in.csv"
    path.write_bytes(b"external_email,complete,External_Email\na@example.org,1, b@example.org \n")
    assert main(["fix", str(path), "--out", str(tmp_path / "o.csv"), "--sanitize"]) == 0
    assert (tmp_path / "o.csv").read_bytes() == b"external_email,complete,External_Email\na@example.org,1,b@example.org\n"
    assert "' b@example.org ' -> 'b@example.org'" in (tmp_path / "o.csv.manifest.csv").read_text()
