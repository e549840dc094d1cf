"""The default path (ingest + ask, offline backend) opens no network connection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GUARD = """
import socket, sys
log = open(sys.argv.pop(1), "a")
LOOPBACK = ("127.", "::1", "localhost")

def _check(address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if not str(host).startswith(LOOPBACK):
        log.write(f"connect {address}\\n"); log.flush()
        raise OSError("network access blocked by the test")

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
def connect(self, address):
    if self.family != socket.AF_UNIX:
        _check(address)
    return _connect(self, address)
def connect_ex(self, address):
    if self.family != socket.AF_UNIX:
        _check(address)
    return _connect_ex(self, address)
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    _check((host,))
    return _getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo = getaddrinfo

from assistant.cli import app
app(prog_name="scholar-chat")
"""


def test_ingest_and_ask_make_no_network_connection(tmp_path: Path) -> None:
    log = tmp_path / "connections.log"
    log.touch()
    env = {**os.environ, "SCHOLAR_CHAT_STORE": str(tmp_path / "store")}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    result = subprocess.run(
        [sys.executable, "-c", GUARD, str(log), "ask", "Which papers address federated learning?"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "5 papers in the collection address federated learning" in result.stdout
    assert log.read_text() == ""
