"""Downloads against a local HTTP server: verify, resume, retry, refuse bad checksums, Drive confirmation."""

import hashlib
import os

import pytest
from fixtures_celeba import TOKEN, FakeServer, md5

from ganrestore.data.download import (ChecksumError, DownloadError, check_file, download_gdrive,
                                      download_url, parse_gdrive_warning)

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
