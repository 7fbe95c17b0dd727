"""Artifacts damaged at rest are not trusted (issue 30, class 6): sidecars record
their artifact's sha256 and size, readers verify them and refuse a damaged file
naming it, the rule that makes it and how to remake it; writes are fsync'ed
before the rename; an unwritable folder is named with its errno; and
``ganrestore verify`` lists the damaged files of a results tree."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganrestore import io
from ganrestore.verify import verify_tree

ROOT = Path(__file__).resolve().parents[1]


def _artifact(tmp_path, rel="results/t/corrupt/sr4/test.npz", stage="corrupt", seed=0):
    p = tmp_path / rel
    rng = np.random.default_rng(seed)
    io.save_artifact(p, {"y": rng.random((4, 3, 16, 16), dtype=np.float32), "ids": np.array(list("abcd"))},
                     {"stage": stage})
    return p


def _truncate_keeping_mtime(p, size):
    st = p.stat()
    with open(p, "r+b") as f:
        f.truncate(size)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_mtime_ns == st.st_mtime_ns


def test_the_sidecar_records_the_artifacts_sha256_and_size(tmp_path):
    p = _artifact(tmp_path)
    meta = json.loads(io.sidecar_path(p).read_text())
    assert meta["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert meta["bytes"] == p.stat().st_size
    assert sorted(io.load_artifact(p)) == ["ids", "y"]


def test_a_truncated_artifact_with_its_mtime_kept_is_refused_naming_file_and_rule(tmp_path):
    p = _artifact(tmp_path)
    _truncate_keeping_mtime(p, p.stat().st_size // 2)
    with pytest.raises(io.ArtifactError) as e:
        io.load_artifact(p)
    msg = str(e.value)
    assert str(p) in msg and "truncated" in msg
    assert "rule corrupt" in msg and "snakemake --forcerun corrupt" in msg and f"delete {p}" in msg
    assert e.value.rule == "corrupt" and e.value.path == str(p)


def test_an_artifact_modified_in_place_at_the_same_size_is_refused(tmp_path):
    p = _artifact(tmp_path, "results/t/restore/sr4/tv/s8-000.npz", stage="restore")
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(io.ArtifactError, match=r"sha256 is [0-9a-f]{64}.*records.*forcerun restore"):
        io.load_artifact(p)


def test_a_garbage_sidecar_is_refused_naming_it(tmp_path):
    p = _artifact(tmp_path)
    io.sidecar_path(p).write_bytes(b"\xff\xfe not json")
    with pytest.raises(io.ArtifactError, match=rf"{io.sidecar_path(p)}: not a readable sidecar of test.npz"):
        io.load_artifact(p)
    io.sidecar_path(p).write_text("[1, 2]")
    with pytest.raises(io.ArtifactError, match="not a sidecar"):
        io.load_meta(p)


def test_a_truncated_artifact_without_a_recorded_checksum_is_still_named(tmp_path):
    """A sidecar of an older version (no sha256): the .npz's own structure is the
    check, and a BadZipFile becomes an error naming the file."""
    p = _artifact(tmp_path)
    meta = json.loads(io.sidecar_path(p).read_text())
    meta.pop("sha256"), meta.pop("bytes")
    io.sidecar_path(p).write_text(json.dumps(meta))
    assert sorted(io.load_artifact(p)) == ["ids", "y"]                  # still readable
    _truncate_keeping_mtime(p, 200)
    with pytest.raises(io.ArtifactError, match=rf"{p}: not a readable .npz \(BadZipFile"):
        io.load_artifact(p)


def test_writes_are_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a, b):
        calls.append(("replace", str(a), str(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    dest = tmp_path / "out.json"
    io.write_json_atomic(dest, {"a": 1})
    kinds = [c[0] for c in calls]
    assert kinds == ["fsync", "replace", "fsync"], calls
    tmp = calls[1][1]
    assert calls[0][1] == tmp and calls[1][2] == str(dest) and calls[2][1] == str(tmp_path)


def test_an_unwritable_folder_is_named_with_its_errno(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OSError) as e:
        io.write_text_atomic(tmp_path / "results" / "x.txt", "hi")
    msg = str(e.value)
    assert f"cannot write into {tmp_path / 'results'}" in msg and "errno 30 EROFS" in msg
    assert e.value.errno == errno.EROFS


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_named_with_its_errno(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=rf"cannot write into {d}.*errno 13 EACCES"):
            io.write_text_atomic(d / "x.txt", "hi")
    finally:
        d.chmod(0o700)


# -- ganrestore verify -------------------------------------------------------------------

def _tree(tmp_path):
    root = tmp_path / "results" / "t"
    good = _artifact(tmp_path, "results/t/corrupt/sr4/test.npz")
    bad = _artifact(tmp_path, "results/t/restore/sr4/tv/s8-000.npz", stage="restore", seed=1)
    io.write_json_atomic(root / "metrics" / "sr4" / "tv.json", {"psnr_mean": 20.0})
    (root / "metrics" / "sr4" / "tv.csv").write_text("a,b\n1,2\n")
    return root, good, bad


def test_verify_lists_the_damaged_files_of_a_results_tree(tmp_path):
    root, good, bad = _tree(tmp_path)
    assert verify_tree(root).ok
    _truncate_keeping_mtime(bad, 100)
    (root / "metrics" / "sr4" / "tv.json").write_text("{garbage")
    (root / "metrics" / "sr4" / ".tv.csv.ab12cd34.csv").write_text("half")
    rep = verify_tree(root)
    damaged = {Path(f.path).name: f.detail for f in rep.of("damaged")}
    assert set(damaged) == {bad.name, "tv.json"}
    assert "forcerun restore" in damaged[bad.name] and "forcerun evaluate" in damaged["tv.json"]
    assert [Path(f.path).name for f in rep.of("leftover")] == [".tv.csv.ab12cd34.csv"]
    assert not rep.ok


def test_verify_command_exit_status_and_output(tmp_path):
    root, good, bad = _tree(tmp_path)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    ok = subprocess.run([sys.executable, "-m", "ganrestore", "verify", str(root)], capture_output=True,
                        text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 damaged" in ok.stdout
    _truncate_keeping_mtime(bad, 100)
    r = subprocess.run([sys.executable, "-m", "ganrestore", "verify", str(root)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 1
    assert f"DAMAGED      {bad}" in r.stdout and "snakemake --forcerun restore" in r.stdout
    assert "1 damaged" in r.stdout and not any(line.startswith('  File "') for line in r.stdout.splitlines())
    missing = subprocess.run([sys.executable, "-m", "ganrestore", "verify", str(tmp_path / "nope")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 2 and "not a folder" in missing.stdout


def test_verify_checks_checkpoints_against_their_sidecars(tmp_path):
    import torch

    from ganrestore.priors import Generator
    from ganrestore.priors.checkpoint import save_prior

    root = tmp_path / "results" / "t"
    torch.manual_seed(0)
    stem = save_prior(root / "priors" / "p", Generator(ngf=4), None, {"steps": 0})
    assert verify_tree(root).ok
    w = Path(f"{stem}.safetensors")
    raw = bytearray(w.read_bytes())
    raw[-1] ^= 1
    w.write_bytes(bytes(raw))
    rep = verify_tree(root)
    assert [Path(f.path).name for f in rep.of("damaged")] == ["p.safetensors"]
    assert "forcerun train_gan" in rep.of("damaged")[0].detail
