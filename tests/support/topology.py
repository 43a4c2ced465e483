"""The production topology of deploy/, started on 127.0.0.1 from those same files:
PostgreSQL 15 behind PgBouncer (transaction pooling), two gunicorn app servers and two
schedulers as their systemd units start them, nginx with TLS in front, evidence in an
S3-compatible bucket (moto), Stripe the development one. The files are rendered with
this machine's ports and paths only (their ``@NAMES@``); the units' ``ExecStart`` lines
are run as systemd would run them, with their ``EnvironmentFile``.

Used by tests/deploy/test_topology.py and bench/topology.py.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from config import PROJECT_ROOT
from tests.support.postgres import (
    PostgresServer,
    _free_port,
    create_database,
    find_bindir,
    wait_for_port,
)
from tests.support.s3 import CREDENTIALS, S3Server
from tests.support.stripe_process import StripeServer

DEPLOY = PROJECT_ROOT / "deploy"
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render(path: Path, values: dict[str, str]) -> str:
    """A deploy file with its ``@NAMES@`` replaced; KeyError for a name not given."""
    return PLACEHOLDER.sub(lambda found: values[found.group(1)], path.read_text())


def environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile: KEY=VALUE lines, comments and blanks skipped."""
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Unit:
    command: list[str]
    directory: Path
    environment_file: Path


def unit(text: str, instance: str) -> Unit:
    """What systemd runs for ``name@instance.service``: its ExecStart (``%i`` the
    instance), WorkingDirectory and EnvironmentFile."""
    service = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "[")):
            service[key.strip()] = value.strip().replace("%i", instance)
    return Unit(
        shlex.split(service["ExecStart"]),
        Path(service["WorkingDirectory"]),
        Path(service["EnvironmentFile"]),
    )


@dataclass
class Topology:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="som-topology-")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    durable: bool = False  # PostgreSQL's production durability (benchmarks)

    def start(self) -> Topology:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: run `make test`")
        for program in ("nginx", "pgbouncer", "openssl"):
            if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
                raise RuntimeError(f"{program} is not installed: run `make test`")
        self.root.chmod(0o755)
        for name in ("pgbouncer", "http", "https", "app_a", "app_b"):
            self.ports[name] = _free_port()
        self.postgres = PostgresServer(bindir, durable=self.durable).start()
        self.password = secrets.token_hex(16)
        database = create_database(self.postgres.url(), "marketplace")
        with psycopg.connect(database.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f"ALTER USER postgres PASSWORD '{self.password}'")
        self.direct_url = database
        self._pgbouncer()
        self.stripe = StripeServer().start()
        self.s3 = S3Server().start()
        self.bucket = self.s3.bucket("som-evidence")
        self.instance = self.root / "instance"
        self.instance.mkdir()
        values = {
            "SECRET_KEY": secrets.token_hex(32),
            "DB_USER": "postgres",
            "DB_PASSWORD": self.password,
            "DATABASE": "marketplace",
            "PGBOUNCER_PORT": str(self.ports["pgbouncer"]),
            "SERVER_NAME": "localhost",
            "DATA_DIR": str(self.instance),
            "BUCKET": self.bucket,
            "STORAGE_ENDPOINT": self.s3.url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "AWS_REGION": CREDENTIALS["AWS_DEFAULT_REGION"],
            "STRIPE_API_KEY": "sk_test_topology",
            "STRIPE_WEBHOOK_SECRET": "whsec_topology",
            "APP_DIR": str(PROJECT_ROOT),
            "CONFIG_DIR": str(self.root),
        }
        self.values = values
        (self.root / "marketplace.env").write_text(render(DEPLOY / "marketplace.env", values))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "STRIPE"))},
            **environment_file((self.root / "marketplace.env").read_text()),
            # The development Stripe, and passwords hashed cheaply (the tests' only change).
            "STRIPE_API_BASE": self.stripe.url,
            "ARGON2_MEMORY_COST_KIB": "1024",
            "ARGON2_TIME_COST": "1",
            "ARGON2_PARALLELISM": "1",
        }
        self.flask(["db", "upgrade"])
        for name in ("app_a", "app_b"):
            self.start_app(name)
        for name in ("a", "b"):
            self.start_scheduler(name)
        self._nginx()
        return self

    # --- the parts -------------------------------------------------------------------

    def _pgbouncer(self) -> None:
        folder = self.root / "pgbouncer"
        folder.mkdir()
        values = {
            "POSTGRES_PORT": str(self.postgres.port),
            "DATABASE": "marketplace",
            "PGBOUNCER_PORT": str(self.ports["pgbouncer"]),
            "RUN_DIR": str(folder),
            "LOG_DIR": str(folder),
            "CONFIG_DIR": str(folder),
            "DB_USER": "postgres",
            "DB_PASSWORD": self.password,
        }
        (folder / "pgbouncer.ini").write_text(render(DEPLOY / "pgbouncer/pgbouncer.ini", values))
        (folder / "userlist.txt").write_text(render(DEPLOY / "pgbouncer/userlist.txt", values))
        command = ["pgbouncer", str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer will not run as root
            shutil.chown(folder, "postgres", "postgres")
            for path in folder.iterdir():
                shutil.chown(path, "postgres", "postgres")
            command = ["pgbouncer", "-u", "postgres", str(folder / "pgbouncer.ini")]
        self.processes["pgbouncer"] = process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.ports["pgbouncer"], process, "PgBouncer")

    def _unit(self, name: str, instance: str) -> Unit:
        text = render(DEPLOY / "systemd" / name, self.values)
        return unit(text, instance)

    def flask(self, arguments: list[str], **extra: str) -> subprocess.CompletedProcess:
        """A ``flask`` command as an operator runs it, with the units' environment."""
        scheduler = self._unit("marketplace-scheduler@.service", "cli")
        flask = scheduler.command[: scheduler.command.index("scheduler")]
        done = subprocess.run(
            [*flask, *arguments],
            env={**self.env, **extra},
            cwd=scheduler.directory,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(arguments)}: {done.stdout}\n{done.stderr}")
        return done

    def tick(self, at) -> subprocess.Popen:
        """A scheduler's sweeps once, as of ``at`` (time passing for the journey)."""
        scheduler = self._unit("marketplace-scheduler@.service", "tick")
        flask = scheduler.command[: scheduler.command.index("scheduler")]
        return subprocess.Popen(
            [*flask, "scheduler", "tick", "--now", at.isoformat()],
            env=self.env,
            cwd=scheduler.directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def start_app(self, name: str) -> None:
        port = self.ports[name]
        app = self._unit("marketplace-web@.service", str(port))
        log = (self.root / f"{name}.log").open("a")
        self.processes[name] = process = subprocess.Popen(
            app.command,
            env=self.env,
            cwd=app.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers die with it (the kill takes the group)
        )
        wait_for_port(port, process, f"app server {name}")

    def start_scheduler(self, name: str) -> None:
        scheduler = self._unit("marketplace-scheduler@.service", name)
        log = (self.root / f"scheduler-{name}.log").open("a")
        self.processes[f"scheduler_{name}"] = subprocess.Popen(
            scheduler.command,
            env=self.env,
            cwd=scheduler.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """SIGKILL a part and its children: a machine's process lost at once."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def _nginx(self) -> None:
        folder = self.root / "nginx"
        folder.mkdir()
        self.certificate, key = folder / "tls.crt", folder / "tls.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(self.certificate),
            ],
            check=True,
            capture_output=True,
        )
        values = {
            "APP_PORT_A": str(self.ports["app_a"]),
            "APP_PORT_B": str(self.ports["app_b"]),
            "HTTP_PORT": str(self.ports["http"]),
            "HTTPS_PORT": str(self.ports["https"]),
            "SERVER_NAME": "localhost",
            "TLS_CERTIFICATE": str(self.certificate),
            "TLS_KEY": str(key),
        }
        (folder / "marketplace.conf").write_text(render(DEPLOY / "nginx/marketplace.conf", values))
        # The main configuration is the machine's (Debian's /etc/nginx/nginx.conf); this
        # one only keeps nginx's files in the test's folder.
        (folder / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"worker_processes 2;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log {folder}/access.log;\n"
            + "".join(
                f"  {kind}_temp_path {folder}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  include {folder}/marketplace.conf;\n}}\n"
        )
        self.processes["nginx"] = process = subprocess.Popen(
            ["nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        wait_for_port(self.ports["https"], process, "nginx")

    # --- reaching it -----------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"https://localhost:{self.ports['https']}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))

    def direct(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        for process in list(self.processes.values()):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for part in ("stripe", "s3", "postgres"):
            if hasattr(self, part):
                getattr(self, part).stop()
        shutil.rmtree(self.root, ignore_errors=True)
