"""Recent files and crash recovery files of the studio."""

import os
import subprocess
import sys

from app.services.user_files import Autosave, RecentFiles


def test_recent_files_most_recent_first_without_duplicates_or_missing(tmp_path):
    recent = RecentFiles(tmp_path / "recent.json", limit=3)
    scenes = [tmp_path / f"s{i}.yaml" for i in range(4)]
    for s in scenes:
        s.write_text("x")
        recent.add(s)
    recent.add(scenes[1])
    assert recent.list() == [scenes[1], scenes[3], scenes[2]]
    scenes[3].unlink()
    assert recent.list() == [scenes[1], scenes[2]]


def test_recent_files_survive_a_corrupt_file(tmp_path):
    (tmp_path / "recent.json").write_text("{not json")
    assert RecentFiles(tmp_path / "recent.json").list() == []


def test_a_crashed_session_leaves_a_recovery_that_the_next_start_finds(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    crashed = Autosave(tmp_path, pid=dead_pid)
    crashed.save("name: edited\n", original=tmp_path / "scene.yaml")

    alive = Autosave(tmp_path, pid=os.getpid())
    alive.save("name: mine\n", original=None)
    found = alive.orphans()
    assert len(found) == 1
    assert found[0].text.read_text() == "name: edited\n"
    assert found[0].original == tmp_path / "scene.yaml"

    alive.discard(found[0])
    assert alive.orphans() == []


def test_a_clean_exit_leaves_nothing_to_recover(tmp_path):
    session = Autosave(tmp_path, pid=os.getpid())
    session.save("a: 1\n", original=None)
    session.end_session()
    assert list(tmp_path.iterdir()) == []
