"""``simpert serve``: the persistent worker the R package talks to."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simpert.cli._serve import handle_request, serve_stream

TINY = ["--set", "n_genes=20", "--set", "n_perturbations=2", "--set", "n_control_cells=10",
        "--set", "cells_per_perturbation=5"]


def _run(argv, **extra):
    reply, stop = handle_request(json.dumps({"id": 1, "argv": argv, **extra}))
    assert not stop
    return reply


def test_a_command_runs_in_process_and_its_output_comes_back():
    reply = _run(["scenarios", "--json"])
    assert reply["exit_code"] == 0
    names = [r["name"] for r in json.loads(reply["stdout"])]
    assert "sparse_strong" in names
    assert reply["id"] == 1 and reply["seconds"] >= 0


def test_user_errors_and_bad_requests_get_replies_not_crashes():
    reply = _run(["simulate", "no_such_scenario", "-o", "/tmp/simpert-serve-never-written"])
    assert reply["exit_code"] == 2
    assert "unknown scenario 'no_such_scenario'" in reply["stderr"]
    for line, expected in [("not json", "one JSON object per line"), ("[1, 2]", "JSON object"),
                           ('{"argv": []}', "field 'argv'"), ('{"argv": [1]}', "field 'argv'"),
                           ('{"op": "dance"}', "field 'op'"),
                           ('{"argv": ["scenarios"], "cwd": "/no/such/dir"}', "field 'cwd'"),
                           ('{"argv": ["serve"]}', "inside itself")]:
        reply, stop = handle_request(line)
        assert not stop
        assert reply["exit_code"] == 2 and expected in reply["stderr"], (line, reply)


def test_an_internal_failure_does_not_stop_the_server(monkeypatch):
    import simpert.cli._serve as serve

    def broken(argv):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(serve, "_run_argv", broken)
    reply = _run(["scenarios"])
    assert reply["exit_code"] == 1 and "kaboom" in reply["stderr"]


def test_cwd_and_env_apply_to_one_request_only(tmp_path):
    before = os.getcwd()
    reply = _run(["--quiet", "simulate", "sparse_strong", "-o", "rel_out", "--format", "mtx", *TINY],
                 cwd=str(tmp_path), env={"SIMPERT_TEST_SERVE": "1"})
    assert reply["exit_code"] == 0, reply["stderr"]
    assert (tmp_path / "rel_out" / "counts.mtx").is_file()
    assert os.getcwd() == before
    assert "SIMPERT_TEST_SERVE" not in os.environ


def test_token_is_checked():
    reply, _ = handle_request(json.dumps({"op": "ping"}), token="abc")
    assert reply["exit_code"] == 2 and "token" in reply["stderr"]
    reply, _ = handle_request(json.dumps({"op": "ping", "token": "abc"}), token="abc")
    assert reply["exit_code"] == 0 and reply["protocol"] == 1


def test_stream_stops_on_shutdown():
    import io

    lines = io.StringIO("\n".join([json.dumps({"op": "ping", "id": 1}), "",
                                   json.dumps({"op": "shutdown", "id": 2}),
                                   json.dumps({"op": "ping", "id": 3})]) + "\n")
    out = io.StringIO()
    assert serve_stream(lines, out) == 2
    ids = [json.loads(x)["id"] for x in out.getvalue().splitlines()]
    assert ids == [1, 2]


def _simpert():
    exe = Path(sys.executable).with_name("simpert")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "simpert.cli"]


def test_stdio_server_process_survives_failures_and_keeps_stdout_clean(tmp_path):
    proc = subprocess.Popen([*_simpert(), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def ask(obj):
            proc.stdin.write(json.dumps(obj) + "\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        assert ask({"op": "ping", "id": 0})["exit_code"] == 0
        assert ask({"id": 1, "argv": ["simulate", "nope", "-o", str(tmp_path / "a")]})["exit_code"] == 2
        out = str(tmp_path / "b")
        t0 = time.perf_counter()
        r = ask({"id": 2, "argv": ["--quiet", "simulate", "sparse_strong", "-o", out, "--format", "mtx", *TINY]})
        assert r["exit_code"] == 0, r["stderr"]
        r = ask({"id": 3, "argv": ["--quiet", "simulate", "sparse_strong", "-o", out + "2", "--format", "mtx", *TINY]})
        assert r["exit_code"] == 0 and r["id"] == 3
        assert (tmp_path / "b2" / "counts.mtx").is_file()
        assert time.perf_counter() - t0 < 60
        assert ask({"op": "shutdown", "id": 4})["id"] == 4
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_socket_server_needs_the_token_serves_successive_connections_and_watches_its_parent(tmp_path):
    port_file = tmp_path / "port"
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    proc = subprocess.Popen([*_simpert(), "serve", "--port", "0", "--port-file", str(port_file),
                             "--parent-pid", str(parent.pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if port_file.exists():
                break
            time.sleep(0.05)
        port, token = port_file.read_text().split()
        assert oct(port_file.stat().st_mode & 0o777) == "0o600"
        with socket.create_connection(("127.0.0.1", int(port)), timeout=60) as s:
            f = s.makefile("rw", encoding="utf-8", newline="\n")
            f.write(json.dumps({"op": "ping", "id": 1}) + "\n")
            f.flush()
            assert "token" in json.loads(f.readline())["stderr"]
            f.write(json.dumps({"argv": ["scenarios", "--json"], "id": 2, "token": token}) + "\n")
            f.flush()
            r = json.loads(f.readline())
            assert r["exit_code"] == 0 and "sparse_strong" in r["stdout"]
            f.close()
        with socket.create_connection(("127.0.0.1", int(port)), timeout=60) as s:
            f = s.makefile("rw", encoding="utf-8", newline="\n")
            f.write(json.dumps({"op": "ping", "id": 3, "token": token}) + "\n")
            f.flush()
            assert json.loads(f.readline())["id"] == 3
            f.close()
        assert proc.poll() is None
        parent.kill()
        parent.wait()
        assert proc.wait(timeout=30) == 0
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_serve_option_errors():
    from typer.testing import CliRunner

    from simpert.cli import app

    res = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert res.exit_code == 2 and "--port-file" in res.stderr
    res = CliRunner().invoke(app, ["serve", "--idle-timeout", "3"])
    assert res.exit_code == 2 and "need '--port'" in res.stderr


def test_socket_server_stops_when_idle(tmp_path):
    from simpert.cli._serve import serve_socket

    t0 = time.perf_counter()
    assert serve_socket(0, str(tmp_path / "port"), idle_timeout=0.3, poll=0.1) == 0
    assert time.perf_counter() - t0 < 10
