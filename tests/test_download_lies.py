"""Downloads from servers that lie (issue 30, classes 2 and 7): a 416 claiming a
half-written .part is whole, a gzip-encoded body, a body that trickles, a size
of 10 TB, and two processes racing for the download lock.  Without a checksum
the announced size is checked on every path; nothing unverified lands."""

from __future__ import annotations

import fcntl
import gzip
import os
import threading
import time
from functools import partial

import pytest
from fixtures_celeba import md5
from test_download import PAYLOAD, _head, _serve, send

from ganrestore.data import download as D
from ganrestore.data.download import DownloadError, download_url

MD5 = md5(PAYLOAD)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


def _dl(srv, dest, **kw):
    kw = {"md5": None, "retries": 2, "backoff": 0, "progress": False, "chunk": 32_768, "timeout": 5, **kw}
    return download_url(srv.url, dest, **kw)


# -- 416 to a resume ------------------------------------------------------------------

def _lying_416(h, start, claimed):
    """416 'bytes */<claimed>' to a resume from ``claimed``; the real file otherwise."""
    if start == claimed:
        return _head(h, 416, {"Content-Range": f"bytes */{claimed}", "Content-Length": 0})
    return send(h, start)


def test_a_416_claiming_a_half_file_is_whole_is_not_believed_without_a_checksum(tmp_path):
    """The .part holds 100 000 of 300 000 bytes; the server answers its resume
    with 416 'bytes */100000'.  The probe sees 300 000: restart, whole file."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:100_000])
    with _serve(partial(_lying_416, claimed=100_000)) as srv:
        _dl(srv, dest)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in srv.log][:2] == ["bytes=100000-", "bytes=0-0"]


def test_with_a_checksum_the_same_lie_is_caught_by_the_checksum(tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:100_000])
    with _serve(partial(_lying_416, claimed=100_000)) as srv:
        _dl(srv, dest, md5=MD5)
    assert dest.read_bytes() == PAYLOAD


# -- Content-Encoding -----------------------------------------------------------------

def _gzip_body(h, start):
    body = gzip.compress(PAYLOAD)
    _head(h, 200, {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip",
                   "Content-Length": len(body)})
    h.wfile.write(body)


@pytest.mark.parametrize("checksum", [None, MD5], ids=["no-checksum", "md5"])
def test_an_encoded_body_is_refused_not_stored_encoded(tmp_path, checksum):
    dest = tmp_path / "blob.bin"
    with _serve(_gzip_body) as srv:
        with pytest.raises(DownloadError, match="Content-Encoding: gzip"):
            _dl(srv, dest, md5=checksum)
    assert not dest.exists() and not dest.with_name("blob.bin.part").exists()
    assert len(srv.log) == 1                       # refused, not retried


def test_identity_is_requested(tmp_path):
    seen = []

    def record(h, start):
        seen.append(h.headers.get("Accept-Encoding"))
        send(h, start)

    with _serve(record) as srv:
        _dl(srv, tmp_path / "blob.bin", md5=MD5)
    assert seen == ["identity"]


# -- trickling bodies -----------------------------------------------------------------

def _trickle(h, start):
    """A 200 announcing the whole file, then one byte every 0.1 s until the test ends."""
    _head(h, 200, {"Content-Type": "application/octet-stream", "Content-Length": len(PAYLOAD)})
    for i in range(len(PAYLOAD)):
        if h.server_obj_stop.wait(0.1):
            return
        try:
            h.wfile.write(PAYLOAD[i:i + 1])
            h.wfile.flush()
        except OSError:
            return


def test_a_trickle_is_cut_by_the_low_speed_rule(tmp_path):
    """timeout=1 s never fires (a byte every 0.1 s); fewer than min_rate bytes/s
    over a 1 s window ends each attempt, and the attempts are bounded."""
    dest = tmp_path / "blob.bin"
    with _serve(_trickle) as srv:
        with pytest.raises(DownloadError, match=r"too slow: \d+ bytes in"):
            _dl(srv, dest, md5=MD5, timeout=1, retries=1, max_attempts=3)
    assert len(srv.log) <= 3 and not dest.exists()


def test_a_trickle_is_cut_by_the_attempt_deadline(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(_trickle) as srv:
        with pytest.raises(DownloadError, match="attempt deadline of 0.5 s"):
            _dl(srv, dest, md5=MD5, timeout=5, min_rate=0, attempt_deadline=0.5, retries=1, max_attempts=2)
    assert len(srv.log) <= 2 and not dest.exists()


# -- announced sizes ------------------------------------------------------------------

def _huge(h, start):
    _head(h, 200, {"Content-Type": "application/octet-stream", "Content-Length": 10 * 10 ** 12})
    h.wfile.write(os.urandom(64 << 10))


def test_a_size_larger_than_the_free_disk_is_refused_before_writing(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(_huge) as srv:
        with pytest.raises(DownloadError, match=r"10000000000000 bytes.*bytes free"):
            _dl(srv, dest)
    assert not dest.exists() and not dest.with_name("blob.bin.part").exists()


def test_a_size_other_than_the_expected_one_is_refused_before_writing(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(send) as srv:
        with pytest.raises(DownloadError, match=rf"announces {len(PAYLOAD)} bytes but the file has 1234"):
            _dl(srv, dest, size=1234)
        assert not dest.with_name("blob.bin.part").exists()
        assert _dl(srv, dest, size=len(PAYLOAD)).read_bytes() == PAYLOAD


def test_a_206_whose_length_disagrees_with_its_range_is_not_trusted(tmp_path):
    """The resume's 206 says bytes 100000-299999 but Content-Length 5: retried,
    and the file still ends whole (the next answer is honest)."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:100_000])
    lied = []

    def behave(h, start):
        if start and not lied:
            lied.append(start)
            _head(h, 206, {"Content-Range": f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}",
                           "Content-Length": 5})
            h.wfile.write(PAYLOAD[start:start + 5])
            return
        send(h, start)

    with _serve(behave) as srv:
        _dl(srv, dest)
    assert dest.read_bytes() == PAYLOAD and lied == [100_000]


# -- the lock ---------------------------------------------------------------------------

def test_the_lock_file_is_never_unlinked(tmp_path):
    dest = tmp_path / "blob.bin"
    lock = tmp_path / "blob.bin.lock"
    with D._file_lock(dest):
        ino = os.stat(lock).st_ino
    assert lock.exists() and os.stat(lock).st_ino == ino
    with D._file_lock(dest):
        assert os.stat(lock).st_ino == ino


def test_a_waiter_and_a_newcomer_never_hold_the_lock_together(tmp_path):
    """A holds the lock, B waits on it; A releases; while B holds it, a newcomer
    (a non-blocking flock on the lock path) must be refused.  With the lock file
    unlinked on release, B held the old file's lock and the newcomer a new one."""
    dest = tmp_path / "blob.bin"
    b_inside, b_done = threading.Event(), threading.Event()

    def waiter():
        with D._file_lock(dest):
            b_inside.set()
            b_done.wait(30)

    with D._file_lock(dest):
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)                      # let B block in flock (if not, the check only gets easier)
    try:
        assert b_inside.wait(30)
        with open(tmp_path / "blob.bin.lock", "a+") as fh:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        b_done.set()
        t.join(30)
