"""The job server accepts exactly its job entry points (issue 30, class 3): a
request for any other function of the package, a log path outside the run's log
folder (directly or through a symlink), a silent connection and more
connections than its cap of children are each refused, dropped or queued."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from ganrestore import jobserver


def _ask(path, req, timeout=60):
    """Send one raw request, return the server's answer (None when it hung up)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(timeout)
        c.connect(path)
        jobserver._send(c, req)
        try:
            return jobserver._recv(c)
        except ConnectionError:
            return None


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("run") / "results" / "x" / "logs"
    d.mkdir(parents=True)
    return d


@pytest.fixture(scope="module")
def server(logs):
    """One server for the module (it imports torch once: ~8 s): the run's log
    folder ``logs``, a 1 s request timeout, at most 2 children."""
    saved = os.environ.pop(jobserver.ENV, None)
    proc, path = jobserver.start(log_dirs=[logs], request_timeout=1.0, max_children=2)
    yield proc, path
    jobserver.stop(proc, path)
    if saved is not None:
        os.environ[jobserver.ENV] = saved


@pytest.mark.parametrize("target, kwargs", [
    ("ganrestore.io:write_text_atomic", {"path": "VICTIM", "text": "owned"}),
    ("ganrestore.plugins:load_modules", {"modules": ["VICTIM.py"]}),
    ("ganrestore.jobserver:serve", {"path": "VICTIM"}),
    ("ganrestore.jobserver:describe", {"path": "VICTIM"}),          # the diagnostic job, not allowed here
    ("os:remove", {"path": "VICTIM"}),
])
def test_a_function_outside_the_allow_list_is_refused_and_never_runs(server, tmp_path, target, kwargs):
    victim = tmp_path / "victim.py"
    victim.write_text("open(__file__ + '.ran', 'w').close()\n")
    kwargs = {k: ([str(victim)] if isinstance(v, list) else str(victim)) for k, v in kwargs.items()}
    reply = _ask(server[1], {"target": target, "kwargs": kwargs, "log": None, "threads": 1})
    assert reply["ok"] is False and "refusing target" in reply["error"]
    assert victim.read_text() == "open(__file__ + '.ran', 'w').close()\n"
    assert not (tmp_path / "victim.py.ran").exists()


def test_every_script_target_is_on_the_allow_list():
    """The entry points the workflow's scripts send are exactly the allow-list (an
    independent read of scripts/*.py)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sent = set()
    for p in (root / "scripts").glob("*.py"):
        sent |= set(re.findall(r"jobserver\.run\(\s*[\"']([\w.]+:\w+)[\"']", p.read_text()))
    assert sent == set(jobserver.JOB_TARGETS)


def test_a_log_outside_the_run_is_refused_and_not_truncated(server, tmp_path, logs):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (logs / "link.log").symlink_to(outside)
    for log in (str(outside), str(logs / "link.log"), str(logs / ".." / ".." / "precious.txt"), str(logs)):
        reply = _ask(server[1], {"target": "ganrestore.pipeline:run_corrupt", "kwargs": {}, "log": log,
                                 "threads": 1})
        assert reply["ok"] is False and "refusing log path" in reply["error"], log
    assert outside.read_text() == "keep me"


def test_a_log_inside_the_run_is_accepted(server, logs, tmp_path):
    """Control: the same kind of request with the log in the run's log folder runs
    (and fails for its own reason: the split does not exist), writing the log."""
    log = logs / "corrupt" / "sr4_test.log"
    reply = _ask(server[1], {"target": "ganrestore.pipeline:run_corrupt",
                             "kwargs": {"split_path": str(tmp_path / "missing.npz"), "task_name": "sr4",
                                        "image_size": 64, "global_seed": 0, "out_path": str(tmp_path / "y.npz")},
                             "log": str(log), "threads": 1})
    assert reply["ok"] is False and "missing.npz" in reply["error"]
    assert "missing.npz" in log.read_text()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def test_a_silent_connection_is_dropped(server):
    """No request within the server's request timeout (1 s here): the child hangs
    up (the client's own 60 s timeout only guards the test)."""
    proc, path = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(60)
        c.connect(path)
        assert c.recv(1) == b""
    deadline = time.monotonic() + 30
    while _children(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _children(proc.pid) == []


def test_a_half_sent_or_oversized_request_is_dropped(server):
    proc, path = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(60)
        c.connect(path)
        c.sendall(struct.pack("!I", 1000) + b'{"target": ')       # then nothing
        assert c.recv(1) == b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(60)
        c.connect(path)
        c.sendall(struct.pack("!I", jobserver.MAX_REQUEST_BYTES + 1))
        assert c.recv(1) == b""


def test_children_are_capped(server):
    """Five silent connections to a server capped at 2 children: never more than
    2 children at once, and every connection is served (dropped) in the end."""
    proc, path = server
    conns = []
    try:
        for _ in range(5):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(60)
            c.connect(path)
            conns.append(c)
        most = 0
        deadline = time.monotonic() + 60
        closed = 0
        while closed < len(conns) and time.monotonic() < deadline:
            most = max(most, len(_children(proc.pid)))
            closed = 0
            for c in conns:
                c.setblocking(False)
                try:
                    closed += c.recv(1) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
            time.sleep(0.02)
        assert closed == len(conns)
        assert 1 <= most <= 2
    finally:
        for c in conns:
            c.close()


def test_check_request_reasons():
    ok = {"target": "ganrestore.pipeline:run_restore", "kwargs": {}, "log": "results/x/logs/a.log", "threads": 1}
    assert jobserver.check_request(ok, log_dirs=("results",)) is None
    assert "JSON object" in jobserver.check_request([1, 2])
    assert "kwargs" in jobserver.check_request({**ok, "kwargs": [1]}, log_dirs=("results",))
    assert "1-thread" in jobserver.check_request({**ok, "threads": 8}, log_dirs=("results",))
    assert "log path" in jobserver.check_request({**ok, "log": "/etc/passwd"}, log_dirs=("results",))
    assert "log path" in jobserver.check_request({**ok, "log": "results"}, log_dirs=("results",))
