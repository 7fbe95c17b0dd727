"""Downloads against a local HTTP server: verify, resume, retry, refuse bad checksums, Drive confirmation."""

import hashlib
import http.server
import logging
import os
import re
import socket
import struct
import threading
from functools import partial

import pytest
from fixtures_celeba import TOKEN, FakeServer, md5

from ganrestore.data.download import (DEFAULT_MAX_ATTEMPTS, ChecksumError, DownloadError, check_file,
                                      download_gdrive, download_url, parse_gdrive_warning)

PAYLOAD = os.urandom(300_000)
MD5 = md5(PAYLOAD)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def server():
    with FakeServer() as s:
        s.files["blob.bin"] = PAYLOAD
        yield s


def _get(server, dest, **kw):
    kw.setdefault("md5", MD5)
    return download_url(f"{server.base}/files/blob.bin", dest, backoff=0, progress=False,
                        chunk=32_768, **kw)


def test_clean_download_verifies_and_second_call_is_offline(server, tmp_path):
    dest = tmp_path / "d" / "blob.bin"
    assert _get(server, dest, sha256=SHA256) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("blob.bin.part").exists()
    n = len(server.log)
    _get(server, dest)  # verified file already there: no request
    assert len(server.log) == n


def test_truncated_transfer_resumes_with_range(server, tmp_path):
    server.drop_once["/files/blob.bin"] = 100_000
    dest = tmp_path / "blob.bin"
    _get(server, dest)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for _, r in server.requests_for("/files/blob.bin")]
    assert ranges[0] is None
    assert ranges == [None, "bytes=100000-"]  # resumed exactly where the connection dropped


def test_part_file_from_killed_run_is_resumed(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:123_456])
    _get(server, dest)
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1][1] == "bytes=123456-"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range.add("/files/blob.bin")
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:50_000])
    _get(server, dest)
    assert dest.read_bytes() == PAYLOAD  # not 50_000 bytes + the whole body


def test_stale_part_of_another_file_is_redone_once(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(os.urandom(10_000))  # junk from some other version
    _get(server, dest)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in server.log] == ["bytes=10000-", None]


def test_http_500_is_retried_then_succeeds(server, tmp_path):
    server.fail["/files/blob.bin"] = 2
    dest = tmp_path / "blob.bin"
    _get(server, dest, retries=3)
    assert dest.read_bytes() == PAYLOAD
    assert len(server.requests_for("/files/blob.bin")) == 3


def test_http_500_forever_is_reported_clearly(server, tmp_path):
    server.fail["/files/blob.bin"] = -1
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match=r"blob\.bin.*failed after 2 retries: HTTP 500"):
        _get(server, dest, retries=2, hint="Get it elsewhere.")
    assert len(server.requests_for("/files/blob.bin")) == 3
    assert not dest.exists()


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_url(f"{server.base}/files/nothing", tmp_path / "x", backoff=0, progress=False)
    assert len(server.requests_for("/files/nothing")) == 1


def test_wrong_checksum_is_refused_and_never_lands(server, tmp_path):
    dest = tmp_path / "blob.bin"
    with pytest.raises(ChecksumError, match=r"blob\.bin: md5 mismatch.*expected 0{32}, got " + MD5):
        _get(server, dest, md5="0" * 32, hint="where to get it")
    assert not dest.exists()
    assert not dest.with_name("blob.bin.part").exists()


def test_existing_bad_file_is_replaced(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"corrupt")
    _get(server, dest)
    assert dest.read_bytes() == PAYLOAD


def test_check_file_sees_html_instead_of_data(tmp_path):
    p = tmp_path / "img_align_celeba.zip"
    p.write_bytes(b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>")
    with pytest.raises(ChecksumError, match="HTML page instead of the file"):
        check_file(p, md5="0" * 32)


@pytest.mark.parametrize("mode", ["direct", "cookie", "href", "form", "virus"])
def test_google_drive_confirmation_is_handled(server, tmp_path, mode):
    server.gdrive["FILEID"] = (PAYLOAD, mode)
    dest = tmp_path / "blob.bin"
    download_gdrive("FILEID", dest, md5=MD5, base=f"{server.base}/uc", backoff=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    paths = [p for p, _ in server.log]
    if mode in ("cookie", "href"):
        assert any(f"confirm={TOKEN}" in p for p in paths)
    if mode == "form":
        assert any(p.startswith("/download?") and "uuid=" in p for p in paths)


def test_google_drive_confirmed_transfer_resumes(server, tmp_path):
    server.gdrive["FILEID"] = (PAYLOAD, "form")
    server.drop_once["/download"] = 70_000
    dest = tmp_path / "blob.bin"
    download_gdrive("FILEID", dest, md5=MD5, base=f"{server.base}/uc", backoff=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert any(r and r.startswith("bytes=") for p, r in server.log if p.startswith("/download"))


def test_google_drive_quota_page_is_reported(server, tmp_path):
    server.gdrive["FILEID"] = (PAYLOAD, "quota")
    with pytest.raises(DownloadError, match="quota exceeded"):
        download_gdrive("FILEID", tmp_path / "b", md5=MD5, base=f"{server.base}/uc", backoff=0,
                        progress=False)
    assert not (tmp_path / "b").exists()


def test_parse_current_drive_warning_page():
    # Shape of drive.google.com's page since 2024 (abridged).
    page = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
    <div class="uc-main"><p class="uc-warning-subcaption">Google Drive can't scan this file for viruses.</p>
    <form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
    <input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/>
    <input type="hidden" name="id" value="0B7EVK8r0v71pZjFTYXZWM3FlRnM">
    <input type="hidden" name="export" value="download">
    <input type="hidden" name="confirm" value="t">
    <input type="hidden" name="uuid" value="5e6f3f5a-1b2c-4d3e-8f9a-0b1c2d3e4f5a"></form></div></body></html>"""
    url = parse_gdrive_warning(page, "https://drive.google.com/uc?export=download&id=X", "X")
    assert url.startswith("https://drive.usercontent.google.com/download?")
    for part in ["id=0B7EVK8r0v71pZjFTYXZWM3FlRnM", "confirm=t", "uuid=5e6f3f5a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
                 "export=download"]:
        assert part in url


# ----------------------------------------------------------------------------------------
# Misbehaving servers (issue 13): the number of requests is bounded in every case, errors
# name the URL and the destination, nothing unverified or half-written lands at ``dest``.


class Scripted:
    """HTTP server on 127.0.0.1 (a thread) answering each GET with ``behave(handler, start)``.

    ``start`` is the offset of the request's ``Range: bytes=<start>-`` (None without
    one); ``log`` holds ``(path, Range header)`` per request.  After ``limit``
    requests it answers 404, so a client that would retry forever fails the test
    instead of hanging it.  ``stop`` ends stalled handlers when the test is over.
    """

    def __init__(self, behave, limit=60):
        self.behave, self.limit, self.log, self.stop = behave, limit, [], threading.Event()
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):  # HTTP/1.0: one request a connection
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.log.append((self.path, self.headers.get("Range")))
                if len(srv.log) > srv.limit:
                    return _head(self, 404, {"Content-Length": 0})
                m = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                srv.behave(self, int(m.group(1)) if m else None)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/files/blob.bin"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _head(h, status, headers):
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, str(v))
    h.end_headers()


def _reset(h):
    """Abortive close: the client sees a connection reset."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


def send(h, start, *, data=PAYLOAD, ranges=True, cut=None, lie=0, length=True, total=True,
         piece=None, then="close", ctype="application/octet-stream"):
    """Serve ``data`` from ``start`` (a 206; from 0 with a 200 unless ``ranges``).

    ``lie``: announce that many bytes more than exist; ``length``/``total``: send
    Content-Length / Content-Range's total; ``piece``: a 206 covers at most that
    many bytes; ``cut``: send only that many bytes of the body, then ``then``:
    "close" the connection, "reset" it or "stall" (a read timeout for the client).
    """
    start = start if ranges and start else 0
    size = len(data) + lie
    end = size - 1 if piece is None else min(size, start + piece) - 1
    hdr = {"Content-Type": ctype, "Accept-Ranges": "bytes"}
    if length:
        hdr["Content-Length"] = end + 1 - start
    if start or piece:
        hdr["Content-Range"] = f"bytes {start}-{end}/{size if total else '*'}"
    _head(h, 206 if start or piece else 200, hdr)
    body = data[start:end + 1]
    h.wfile.write(body[:cut])
    if cut is not None and then == "stall":
        h.server_obj_stop.wait(10)
    elif cut is not None and then == "reset":
        _reset(h)


def _stall(h, start):
    h.server_obj_stop.wait(10)


def _dl(srv, dest, **kw):
    kw = {"md5": MD5, "retries": 2, "backoff": 0, "progress": False, "chunk": 32_768,
          "timeout": 5, **kw}
    return download_url(srv.url, dest, **kw)


def _names(err, srv, dest):
    """The error names the URL and the destination file."""
    assert srv.url in str(err) or srv.base in str(err), str(err)
    assert str(dest) in str(err), str(err)


_503 = lambda h, s: _head(h, 503, {"Content-Length": 0})  # noqa: E731

# (behaviour, bytes of .part before, expected requests, error text): retries=2, so a
# download that makes no progress makes 3 requests, one whose first request did, 4.
BOUNDED = {
    "truncated, Range ignored": (partial(send, ranges=False, cut=100_000), 0, 4, "truncated body"),
    "truncated, Range ignored, .part longer than the cut": (
        partial(send, ranges=False, cut=100_000), 150_000, 3, "truncated body"),
    "truncated, Range honoured, 1000 bytes a response": (
        partial(send, cut=1000), 0, DEFAULT_MAX_ATTEMPTS, r"after 30 attempts \(max_attempts\)"),
    "HTTP 503": (_503, 0, 3, "HTTP 503"),
    "reset before the response": (lambda h, s: _reset(h), 0, 3, "Error"),
    "reset mid-body, Range ignored": (partial(send, ranges=False, cut=100_000, then="reset"), 0, 4,
                                      "connection lost after 100000 bytes: ConnectionResetError"),
    "read timeout mid-body, Range ignored": (
        partial(send, ranges=False, cut=100_000, then="stall"), 0, 4,
        "connection lost after 100000 bytes: TimeoutError"),
    "read timeout before the response": (_stall, 0, 3, "timed out"),
    "Content-Length larger than the body, Range honoured": (
        partial(send, lie=1000), 0, 4, "truncated body: 0 of 1000 bytes"),
    "Content-Length larger than the body, Range ignored": (
        partial(send, ranges=False, lie=1000), 0, 4, "truncated body: 300000 of 301000 bytes"),
}


def _serve(behave, **kw):
    srv = Scripted(None, **kw)
    srv.behave = lambda h, s: (setattr(h, "server_obj_stop", srv.stop), behave(h, s))
    return srv


@pytest.mark.parametrize("checksum", [True, False], ids=["md5", "no-checksum"])
@pytest.mark.parametrize("case", list(BOUNDED))
def test_attempts_are_bounded_whatever_the_server_does(tmp_path, case, checksum):
    behave, before, n, why = BOUNDED[case]
    dest = tmp_path / "blob.bin"
    part = dest.with_name("blob.bin.part")
    if before:
        part.write_bytes(PAYLOAD[:before])
    with _serve(behave) as srv, pytest.raises(DownloadError, match=why) as err:
        _dl(srv, dest, timeout=0.3, md5=MD5 if checksum else None)
    assert len(srv.log) == n, srv.log
    _names(err.value, srv, dest)
    assert not dest.exists()


def test_range_ignored_restart_is_counted_and_progress_is_beyond_the_furthest_offset(tmp_path):
    """The old code counted every non-empty restart as progress and never stopped."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:50_000])
    with _serve(partial(send, ranges=False, cut=100_000)) as srv, pytest.raises(DownloadError):
        _dl(srv, dest, retries=5)
    # the first restart passed 50_000 (progress), the next 6 never passed 100_000
    assert [r for _, r in srv.log] == ["bytes=50000-"] + ["bytes=100000-"] * 6


def test_real_progress_is_not_limited_by_retries_but_by_max_attempts(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(partial(send, cut=100_000)) as srv:  # each response cut short, Range honoured
        _dl(srv, dest, retries=0)
        assert dest.read_bytes() == PAYLOAD
        assert [r for _, r in srv.log] == [None, "bytes=100000-", "bytes=200000-"]
    dest.unlink()
    with _serve(partial(send, cut=100_000)) as srv, pytest.raises(
            DownloadError, match=r"gave up after 2 attempts \(max_attempts\)") as err:
        _dl(srv, dest, retries=0, max_attempts=2)
    assert len(srv.log) == 2
    _names(err.value, srv, dest)
    assert dest.with_name("blob.bin.part").stat().st_size == 200_000  # kept for the next run
    assert not dest.exists()


def test_backoff_is_exponential_capped_and_restarts_after_progress(tmp_path, monkeypatch):
    import ganrestore.data.download as dl

    slept = []
    monkeypatch.setattr(dl.time, "sleep", slept.append)
    with _serve(_503) as srv, pytest.raises(DownloadError):
        _dl(srv, tmp_path / "a", retries=4, backoff=0.5)
    assert slept == [0.5, 1, 2, 4]
    slept.clear()
    with _serve(_503) as srv, pytest.raises(DownloadError):
        _dl(srv, tmp_path / "b", retries=3, backoff=40)
    assert slept == [40, dl.BACKOFF_CAP, dl.BACKOFF_CAP]
    slept.clear()
    with _serve(partial(send, ranges=False, cut=100_000)) as srv, pytest.raises(DownloadError):
        _dl(srv, tmp_path / "c", retries=2, backoff=1)
    assert slept == [1, 1, 2]  # after the progress, then two stalls


def test_no_checksum_and_no_content_length_is_refused(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(partial(send, length=False)) as srv, pytest.raises(
            DownloadError, match="no checksum.*Content-Length.*refusing") as err:
        _dl(srv, dest, md5=None)
    assert len(srv.log) == 1
    _names(err.value, srv, dest)
    assert not dest.exists() and not dest.with_name("blob.bin.part").exists()
    with _serve(partial(send, length=False)) as srv:  # a checksum can judge it
        _dl(srv, dest)
    assert dest.read_bytes() == PAYLOAD


def test_no_checksum_and_no_content_range_total_is_refused(tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:100_000])
    with _serve(partial(send, total=False)) as srv, pytest.raises(
            DownloadError, match="Content-Range total") as err:
        _dl(srv, dest, md5=None)
    assert srv.log == [("/files/blob.bin", "bytes=100000-")]
    _names(err.value, srv, dest)
    assert not dest.exists()


def test_no_checksum_server_sending_pieces_is_completed_and_logged_unverified(tmp_path, caplog):
    """A 206 covering less than the rest is not the whole file (the old code kept it)."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:1000])
    with caplog.at_level(logging.WARNING, "ganrestore.data.download"), \
            _serve(partial(send, piece=100_000)) as srv:
        _dl(srv, dest, md5=None)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in srv.log] == ["bytes=1000-", "bytes=101000-", "bytes=201000-"]
    assert "unverified (size-checked only" in caplog.text and str(dest) in caplog.text


def test_no_checksum_part_longer_than_the_file_is_redone(tmp_path):
    """416 with another size than the .part's: the old code renamed the junk into place."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD + b"junk" * 250)
    with _serve(lambda h, s: _head(h, 416, {"Content-Range": f"bytes */{len(PAYLOAD)}",
                                            "Content-Length": 0}) if s else send(h, s)) as srv:
        _dl(srv, dest, md5=None)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in srv.log] == [f"bytes={len(PAYLOAD) + 1000}-", None]


def test_no_checksum_part_already_whole_is_kept(tmp_path):
    """A 416 saying the .part is whole is confirmed by a one-byte probe (issue 30:
    a 416 alone is no proof without a checksum), then kept without refetching."""
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD)
    with _serve(lambda h, s: _head(h, 416, {"Content-Range": f"bytes */{len(PAYLOAD)}",
                                            "Content-Length": 0}) if s == len(PAYLOAD) else send(h, s)) as srv:
        _dl(srv, dest, md5=None)
    assert dest.read_bytes() == PAYLOAD
    assert [r for _, r in srv.log] == [f"bytes={len(PAYLOAD)}-", "bytes=0-0"]


# Google Drive: /uc answers the "Virus scan warning" page; /uc?...confirm=t is the file.
def _warning_page(h, start):
    page = b"<html><head><title>Google Drive - Virus scan warning</title></head></html>"
    _head(h, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": len(page)})
    h.wfile.write(page)


def _drive(file_behave, page_behave=_warning_page):
    return lambda h, start: (file_behave if "confirm=t" in h.path else page_behave)(h, start)


def _gdrive(srv, dest, **kw):
    kw = {"md5": MD5, "retries": 2, "backoff": 0, "progress": False, "timeout": 0.3, **kw}
    return download_gdrive("FILEID", dest, base=f"{srv.base}/uc", **kw)


def test_google_drive_confirmed_url_answering_html_again_is_refused(tmp_path):
    dest = tmp_path / "blob.bin"
    with _serve(_drive(_warning_page)) as srv, pytest.raises(
            DownloadError, match="HTML page instead of the file") as err:
        _gdrive(srv, dest, md5=None)
    assert len(srv.log) == 2  # the warning page, the confirmed URL: no loop
    _names(err.value, srv, dest)
    assert not dest.exists()


@pytest.mark.parametrize("case,behave,n", [
    ("5xx on the page", _drive(None, _503), 3),
    ("page stalls mid-body", _drive(None, partial(send, data=b"<html>" * 200, cut=10, then="stall",
                                                  ctype="text/html")), 3),
    ("confirmed file truncated, Range ignored", _drive(partial(send, ranges=False, cut=100_000)), 1 + 4),
])
def test_google_drive_attempts_are_bounded(tmp_path, case, behave, n):
    dest = tmp_path / "blob.bin"
    with _serve(behave) as srv, pytest.raises(DownloadError) as err:
        _gdrive(srv, dest)
    assert len(srv.log) == n, srv.log
    _names(err.value, srv, dest)
    assert not dest.exists()
