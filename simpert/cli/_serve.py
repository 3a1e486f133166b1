"""``simpert serve``: one long-lived process that runs simpert commands on request.

A client (the R package) that runs many small commands would otherwise pay Python's
start-up and simpert's imports on every call. The server reads one JSON request per line
and writes one JSON reply per line:

request
    ``{"id": 7, "argv": ["simulate", "sparse_strong", "-o", "/tmp/x"], "cwd": "/home/me"}``
    (``argv`` is the argument list of a ``simpert`` command; ``cwd``, optional, is the
    directory relative paths are read against; ``env``, optional, a mapping of environment
    variables set for this request only). ``{"op": "ping"}`` and ``{"op": "shutdown"}``
    are the two control requests.
reply
    ``{"id": 7, "exit_code": 0, "stdout": "...", "stderr": "...", "seconds": 0.12}``

The transport is standard input and output (the default), or a TCP socket on the loopback
interface (``--port``; the port and a random token are written to ``--port-file``, and
every request must carry ``"token"``; a client connects for each call, so it holds no
connection between calls). A request that fails, even with an internal error, gets a
reply with a non-zero exit code; the server keeps serving. It stops on ``shutdown``, at
the end of its standard input (the client closed the pipe, as when its session ends),
when the process ``--parent-pid`` ends, or after ``--idle-timeout`` seconds without a
request.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

import typer

from .._io import process_alive

__all__ = ["handle_request", "serve_stream", "serve_stdio", "serve_socket"]

PROTOCOL_VERSION = 1


def _run_argv(argv: list[str]) -> tuple[int, str, str]:
    """Run one ``simpert`` command in this process; return (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from . import app

    runner = CliRunner()
    result = runner.invoke(app, argv, prog_name="simpert", catch_exceptions=True)
    code = int(result.exit_code) if result.exit_code is not None else 1
    out = result.stdout
    err = result.stderr
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        if os.environ.get("SIMPERT_DEBUG") and result.exc_info is not None:
            err += "".join(traceback.format_exception(*result.exc_info))
        err += f"internal error ({type(exc).__name__}): {exc}\n"
        code = code or 1
    return code, out, err


@contextlib.contextmanager
def _request_context(cwd, env):
    """Run inside ``cwd`` with ``env`` set, restoring both afterwards."""
    old_cwd = os.getcwd()
    saved = {}
    try:
        if cwd is not None:
            os.chdir(cwd)
        for key, value in (env or {}).items():
            saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = str(value)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with contextlib.suppress(OSError):
            os.chdir(old_cwd)


def _reply_error(rid, message: str, code: int = 2) -> dict:
    return {"id": rid, "exit_code": code, "stdout": "", "stderr": f"error: {message}\n", "seconds": 0.0}


def handle_request(line: str, *, token: str | None = None) -> tuple[dict, bool]:
    """Answer one request line.

    Parameters
    ----------
    line : str
        One JSON object (see the module docstring).
    token : str, optional
        When given, the request must carry ``"token"`` equal to it.

    Returns
    -------
    reply : dict
        The JSON-serialisable reply.
    stop : bool
        Whether the server should stop after sending the reply.
    """
    try:
        req = json.loads(line)
    except ValueError as err:
        return _reply_error(None, f"a request must be one JSON object per line; got {line[:80]!r} ({err})"), False
    if not isinstance(req, dict):
        return _reply_error(None, f"a request must be a JSON object; got {type(req).__name__}"), False
    rid = req.get("id")
    if token is not None and req.get("token") != token:
        return _reply_error(rid, "the request's token does not match the server's"), False
    op = req.get("op", "run")
    if op == "ping":
        from simpert import __version__

        return {"id": rid, "exit_code": 0, "stdout": "", "stderr": "", "seconds": 0.0,
                "version": __version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid()}, False
    if op == "shutdown":
        return {"id": rid, "exit_code": 0, "stdout": "", "stderr": "", "seconds": 0.0}, True
    if op != "run":
        return _reply_error(rid, f"field 'op' must be 'run', 'ping' or 'shutdown'; got {op!r}"), False
    argv = req.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return _reply_error(rid, f"field 'argv' must be a non-empty list of strings; got {argv!r}"), False
    if argv[0] in ("serve",) or (argv[0].startswith("-") and "serve" in argv):
        return _reply_error(rid, "a server cannot run 'simpert serve' inside itself"), False
    cwd = req.get("cwd")
    env = req.get("env")
    if cwd is not None and not (isinstance(cwd, str) and os.path.isdir(cwd)):
        return _reply_error(rid, f"field 'cwd' must name an existing directory; got {cwd!r}"), False
    if env is not None and not isinstance(env, dict):
        return _reply_error(rid, f"field 'env' must be a JSON object; got {type(env).__name__}"), False
    t0 = time.perf_counter()
    try:
        with _request_context(cwd, env):
            code, out, err = _run_argv(argv)
    except BaseException as exc:  # noqa: BLE001 - a request must never stop the server
        if isinstance(exc, KeyboardInterrupt):
            raise
        code, out, err = 1, "", f"internal error ({type(exc).__name__}): {exc}\n"
    return {"id": rid, "exit_code": code, "stdout": out, "stderr": err,
            "seconds": round(time.perf_counter() - t0, 6)}, False


def serve_stream(reader, writer, *, token: str | None = None, idle_timeout: float | None = None) -> int:
    """Serve requests read line by line from ``reader``, replying on ``writer``.

    Parameters
    ----------
    reader : text file object
        Source of request lines.
    writer : text file object
        Destination of reply lines (flushed after each).
    token : str, optional
        Token every request must carry.
    idle_timeout : float, optional
        Unused here (see :func:`serve_socket`); kept for a uniform signature.

    Returns
    -------
    int
        The number of requests answered.
    """
    n = 0
    for line in reader:
        if not line.strip():
            continue
        reply, stop = handle_request(line, token=token)
        writer.write(json.dumps(reply) + "\n")
        writer.flush()
        n += 1
        if stop:
            break
    return n


def serve_stdio() -> int:
    """Serve on standard input and output.

    The replies get a private copy of the output descriptor; descriptor 1 itself is pointed
    at standard error, so that nothing a command or a library prints can corrupt the
    protocol.

    Returns
    -------
    int
        The number of requests answered.
    """
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(2), "wb", buffering=0), write_through=True)
    writer = io.TextIOWrapper(os.fdopen(proto_fd, "wb", buffering=0), encoding="utf-8", write_through=True)
    reader = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    return serve_stream(reader, writer)


def serve_socket(port: int, port_file: str, *, idle_timeout: float | None = None,
                 parent_pid: int | None = None, poll: float = 1.0) -> int:
    """Serve clients over a loopback TCP socket, one connection at a time.

    A client connects, sends one or more request lines, reads the replies and closes the
    connection; the server then waits for the next connection. So a client keeps no
    connection open between calls.

    Parameters
    ----------
    port : int
        Port to listen on (0: any free port).
    port_file : str
        File that receives ``"<port> <token>"`` once the server listens (readable by its
        owner only); clients read it and send the token with each request.
    idle_timeout : float, optional
        Stop after this many seconds without a request.
    parent_pid : int, optional
        Stop when this process (the client's session) no longer exists.
    poll : float, default 1.0
        Seconds between checks of ``parent_pid`` and ``idle_timeout``.

    Returns
    -------
    int
        The number of requests answered.
    """
    token = secrets.token_hex(16)
    n = 0
    last = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", int(port)))
        srv.listen(8)
        srv.settimeout(poll)
        tmp = f"{port_file}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{srv.getsockname()[1]} {token}\n")
        os.replace(tmp, port_file)
        while True:
            if parent_pid is not None and not process_alive(parent_pid):
                return n
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return n
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            stop = False
            with conn:
                conn.settimeout(None)
                reader = conn.makefile("r", encoding="utf-8", newline="\n")
                writer = conn.makefile("w", encoding="utf-8", newline="\n")
                try:
                    for line in reader:
                        if not line.strip():
                            continue
                        reply, stop = handle_request(line, token=token)
                        writer.write(json.dumps(reply) + "\n")
                        writer.flush()
                        n += 1
                        last = time.monotonic()
                        if stop:
                            break
                except (ConnectionError, OSError):
                    pass
                finally:
                    for f in (reader, writer):
                        with contextlib.suppress(OSError):
                            f.close()
            if stop:
                return n


def register(app) -> None:
    """Add the ``serve`` command to the ``simpert`` application ``app``."""
    from ._common import CLIError, user_errors

    @app.command("serve")
    @user_errors
    def serve_cmd(
        port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, help="Serve over a "
                                           "loopback TCP socket on this port (0: any free port) "
                                           "instead of standard input and output."),
        port_file: Optional[Path] = typer.Option(None, "--port-file", help="With --port: file that "
                                                 "receives '<port> <token>' once the server listens."),
        idle_timeout: Optional[float] = typer.Option(None, "--idle-timeout", min=0.0, help="With "
                                                     "--port: stop after this many seconds without "
                                                     "a request."),
        parent_pid: Optional[int] = typer.Option(None, "--parent-pid", min=1, help="With --port: "
                                                 "stop when this process (the client's session) "
                                                 "ends."),
    ):
        """Run simpert commands sent one JSON request per line (a persistent worker for the R package)."""
        if port is None:
            if port_file is not None or idle_timeout is not None or parent_pid is not None:
                raise CLIError("options '--port-file', '--idle-timeout' and '--parent-pid' need '--port'")
            serve_stdio()
            return
        if port_file is None:
            raise CLIError("option '--port' needs '--port-file' (where the port and token are written)")
        serve_socket(port, str(port_file), idle_timeout=idle_timeout, parent_pid=parent_pid)
