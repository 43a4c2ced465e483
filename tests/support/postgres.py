"""A private, throwaway PostgreSQL server for the test run.

It is initialised in a new temporary folder, listens only on 127.0.0.1 at a
free port, runs without fsync, and is removed when the run ends. As root
(CI, the dev machines) ``initdb`` and ``pg_ctl`` run as the ``postgres`` user,
because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """PostgreSQL's server binaries: $PG_BINDIR, else the newest Debian install."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    """Until a server process started for a test listens on 127.0.0.1:``port``;
    RuntimeError should it exit first or take longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


class PostgresServer:
    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        """``durable``: PostgreSQL's production settings (fsync, synchronous_commit and
        full_page_writes on), as benchmarks need; tests run without them, for speed."""
        self.bindir = bindir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="som-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        command = [*self._as_postgres, *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        speed = (
            ""
            if self.durable
            else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        )
        self.options = options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} {speed}-c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        return self

    def pg_ctl(self, *args: str) -> None:
        """``pg_ctl`` on this server (``stop -m fast``, ``start``, ``restart -m fast``),
        started again with the options it was first started with."""
        log = str(self.root / "server.log")
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", log, "-w"]
        self._run(*command, "-o", self.options, *args)

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def create_database(admin_url: str, name: str) -> str:
    """Create (or re-create) an empty database and return its URL."""
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database made by ``create_database`` (its connections are closed first)."""
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def durability(url: str) -> str:
    """PostgreSQL's durability settings as the server at ``url`` reports them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        found = [
            f"{name}={conn.execute(text(f'SHOW {name}')).scalar()}"
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        ]
    engine.dispose()
    return "durability: " + ", ".join(found)
