"""A run into a results folder that cannot be written stops before its first job
naming the folder and the errno (issue 30, class 6).  A read-only folder needs a
read-only mount as root (root ignores mode bits) or mode 0500 otherwise."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import pytest

from ganrestore import io
from workflow_helpers import copy_workflow, snakemake, tiny_config, write_config


def _read_only(folder):
    """Make ``folder`` read-only; return how to undo it (None when impossible here)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return lambda: folder.chmod(0o700)
    if shutil.which("mount") is None:
        return None
    src = folder.with_name(folder.name + "-src")
    src.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "--bind", str(src), str(folder)], capture_output=True).returncode == 0
    if not ok:
        return None
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(folder)], capture_output=True)
        return None
    return lambda: subprocess.run(["umount", str(folder)], capture_output=True)


def test_check_writable_names_the_first_unwritable_folder(tmp_path, monkeypatch):
    """Unit: a folder os.access reports unwritable is probed for the real errno."""
    import tempfile

    bad = tmp_path / "results" / "x" / "data"
    bad.mkdir(parents=True)
    real_access, real_mkstemp = os.access, tempfile.mkstemp
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(bad) else real_access(p, m))

    def mkstemp(*a, dir=None, **k):
        if str(dir) == str(bad):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OSError, match=rf"cannot write into {bad}: Read-only file system \(errno 30 EROFS\)"):
        io.check_writable(tmp_path / "results" / "x")
    io.check_writable(tmp_path / "results" / "y")                  # a fresh one is created and fine


@pytest.mark.slow
def test_a_run_into_a_read_only_results_folder_names_it_and_the_errno(tmp_path):
    wd = copy_workflow(tmp_path / "wf", with_profiles=False)
    cfg = write_config(wd, tiny_config("ro"), "ro.yaml")
    undo = _read_only(wd / "results" / "ro" / "data")
    if undo is None:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        r = snakemake(wd, "results/ro/data/test.npz", "--cores", "1", "--configfile", cfg.name, timeout=600)
    finally:
        undo()
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "ganrestore: cannot write into results/ro/data: " in out, out[-3000:]
    assert "(errno 30 EROFS)" in out or "(errno 13 EACCES)" in out
    assert "localrule prepare_demo" not in out                       # stopped before the job
    assert not [line for line in out.splitlines() if line.lstrip().startswith('File "')]
