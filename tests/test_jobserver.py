"""The local job server (ganrestore.jobserver): jobs forked from one warm
process give the same result as in their own process, failures and refusals
come back as errors with the log written, a killed client takes its job along,
and without a server every job runs in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ganrestore import jobserver


@pytest.fixture
def server(monkeypatch, tmp_path):
    monkeypatch.delenv(jobserver.ENV, raising=False)
    proc, path = jobserver.start(log_dirs=[tmp_path], allow=(jobserver.DESCRIBE,))
    yield proc, path
    jobserver.stop(proc, path)
    assert proc.poll() is not None and not os.path.exists(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:          # a zombie is not alive
        return f.read().split(")")[1].split()[0] != "Z"


def test_job_runs_in_a_child_of_the_server_with_one_thread(server, tmp_path):
    proc, _ = server
    out = tmp_path / "where.json"
    jobserver.run("ganrestore.jobserver:describe", {"path": str(out)}, tmp_path / "job.log")
    info = json.loads(out.read_text())
    assert info["ppid"] == proc.pid and info["pid"] != os.getpid()
    assert info["torch_preloaded"] and info["torch_threads"] == 1
    assert (tmp_path / "job.log").exists()


def test_without_a_server_the_job_runs_here(monkeypatch, tmp_path):
    monkeypatch.setenv(jobserver.ENV, str(tmp_path / "no-such-socket"))
    out = tmp_path / "where.json"
    jobserver.run("ganrestore.jobserver:describe", {"path": str(out)}, None)
    assert json.loads(out.read_text())["pid"] == os.getpid()


def test_a_failing_job_raises_with_its_traceback_in_the_log(server, tmp_path):
    log = tmp_path / "fail.log"
    with pytest.raises(RuntimeError, match="job failed"):
        jobserver.run("ganrestore.pipeline:run_corrupt",
                      {"split_path": str(tmp_path / "missing.npz"), "task_name": "sr4", "image_size": 64,
                       "global_seed": 0, "out_path": str(tmp_path / "y.npz")}, log)
    text = log.read_text()
    assert "Traceback" in text and "missing.npz" in text
    assert not (tmp_path / "y.npz").exists()


def test_only_library_functions_are_run(server, tmp_path):
    with pytest.raises(RuntimeError, match="refusing target"):
        jobserver.run("os:system", {"command": "true"}, tmp_path / "x.log")


def _client_of_a_sleeping_job(tmp_path, **kwargs):
    """A client process whose job (describe, sleeping 60 s) has started: (client, job pid)."""
    out = tmp_path / "where.json"
    args = {"path": str(out), "sleep": 60, **{k: str(v) for k, v in kwargs.items()}}
    code = f"from ganrestore import jobserver; jobserver.run('ganrestore.jobserver:describe', {args!r}, None)"
    client = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return client, json.loads(out.read_text())["pid"]


def test_a_killed_client_takes_its_job_along(server, tmp_path):
    client, child = _client_of_a_sleeping_job(tmp_path)
    assert _alive(child)
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the job outlived its client"


def test_a_killed_clients_job_cleans_up_before_it_goes(server, tmp_path):
    """The job is stopped by an exception, not SIGKILL, when it can be: the file it
    was writing through atomic_path leaves no hidden temporary behind (and no
    output).  The job server's child gets SIGTERM -> SystemExit; SIGKILL only
    after jobserver.KILL_GRACE seconds."""
    part = tmp_path / "figure.png"
    client, child = _client_of_a_sleeping_job(tmp_path, partial=part)
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".figure.png.")]
    t0 = time.monotonic()
    client.send_signal(signal.SIGKILL)
    client.wait()
    while _alive(child) and time.monotonic() < t0 + 10:
        time.sleep(0.05)
    assert not _alive(child)
    assert time.monotonic() - t0 < jobserver.KILL_GRACE, "the job needed SIGKILL"
    assert not part.exists()
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".figure.png.")] == []


def test_the_server_exits_with_its_parent(tmp_path):
    """The server watches its parent (Snakemake): gone parent, gone server."""
    sock = str(tmp_path / "s")
    code = ("import subprocess, sys, os, time; "
            f"p = subprocess.Popen([sys.executable, '-m', 'ganrestore.jobserver', 'serve', {sock!r}, str(os.getpid())]); "
            "print(p.pid, flush=True); time.sleep(1)")
    parent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
