"""The one helper behind every private file (journal, plans, fixes, crash reports, state): 0600
from the first byte under a loose umask, never over a file when asked for a new one, never
through a symlink when told not to follow one."""

from __future__ import annotations

import os
import stat

import pytest

from importconsole.private_files import open_private, private_folder, write_private


@pytest.fixture
def loose_umask():
    old = os.umask(0o000)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_are_private_under_a_loose_umask(tmp_path, loose_umask):
    folder = private_folder(tmp_path / "state" / "plans")
    assert mode(folder) == 0o700
    written = write_private(folder / "plan.csv", "external_user_id\r\nu1\r\n")
    assert mode(written) == 0o600 and written.read_bytes() == b"external_user_id\r\nu1\r\n"
    os.close(open_private(folder / "crash.txt", "new"))
    assert mode(folder / "crash.txt") == 0o600


def test_an_older_loose_file_is_tightened_when_written_again(tmp_path, loose_umask):
    journal = tmp_path / "journal.jsonl"
    journal.write_text("{}\n")
    journal.chmod(0o644)
    fd = open_private(journal, "append")
    os.write(fd, b"{}\n")
    os.close(fd)
    assert mode(journal) == 0o600 and journal.read_text() == "{}\n{}\n"
    state = tmp_path / "state.toml"
    state.write_text("old")
    state.chmod(0o644)
    (tmp_path / "state.toml.tmp").write_text("left by a kill")
    (tmp_path / "state.toml.tmp").chmod(0o666)
    write_private(state, b"new", atomic=True)
    assert mode(state) == 0o600 and state.read_text() == "new" and not (tmp_path / "state.toml.tmp").exists()


def test_a_new_file_is_never_written_over_anything(tmp_path):
    existing = tmp_path / "fixed.csv"
    existing.write_text("the admin's")
    with pytest.raises(FileExistsError):
        open_private(existing, "new")
    dangling = tmp_path / "manifest.json"
    dangling.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(FileExistsError):
        open_private(dangling, "new", follow_links=False)
    assert existing.read_text() == "the admin's" and not (tmp_path / "elsewhere.json").exists()


def test_a_symlink_is_not_written_through_when_links_are_not_followed(tmp_path):
    target = tmp_path / "someone-elses.csv"
    target.write_text("theirs")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_private(link, "replace", follow_links=False)
    assert target.read_text() == "theirs"
