"""The embedded PostgreSQL cluster (scripts/postgres.sh) lets in nobody but Pulp.

Any OS user of the host can open a TCP connection to 127.0.0.1 (and may find the unix socket),
so the cluster must ask for the password of its `postgres` superuser, which only the instance
knows (``$PULP_DATA_DIR/secrets/db_password``, written into ``settings.py``). Another local user
(``nobody``, through ``runuser``; needs root) must not get in, neither without a password nor
with a wrong one. The checks run against the cluster ``scripts/test.sh`` started for the test
instance; no Pulp server is needed. With an external database (``PULP_DATABASE_HOST``) there is
nothing to check.
"""

from __future__ import annotations

import glob
import hashlib
import os
import runpy
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

OTHER_USER = "nobody"

pytestmark = [
    pytest.mark.skipif(
        bool(os.environ.get("PULP_DATABASE_HOST")),
        reason="PULP_DATABASE_HOST is set: no embedded PostgreSQL",
    ),
    pytest.mark.skipif(
        not (os.environ.get("PULP_DATA_DIR") and os.environ.get("PULP_DB_PORT")),
        reason="needs the environment of scripts/test.sh (PULP_DATA_DIR, PULP_DB_PORT)",
    ),
]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason=f"connecting as another OS user ({OTHER_USER}) needs root"
)


def _psql() -> str:
    """psql of the PostgreSQL the scripts use (PULP_PG_BIN, newest /usr/lib/postgresql)."""
    candidates = []
    if os.environ.get("PULP_PG_BIN"):
        candidates.append(os.path.join(os.environ["PULP_PG_BIN"], "psql"))
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin/psql"),
        key=lambda path: [int(part) for part in Path(path).parts[4].split(".") if part.isdigit()],
        reverse=True,
    )
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("psql")
    if found is None:
        pytest.skip("psql not found")
    return found


def _data_dir() -> Path:
    return Path(os.environ["PULP_DATA_DIR"])


def _db_port() -> int:
    return int(os.environ["PULP_DB_PORT"])


def _pgdata() -> Path:
    """Where scripts/postgres.sh keeps the cluster (see its PG_HOME logic)."""
    local = _data_dir() / "pgdata"
    if (local / "PG_VERSION").exists():
        return local
    digest = hashlib.sha256(str(_data_dir()).encode()).hexdigest()[:12]
    return Path(f"/var/tmp/pulp_container-pg-{digest}/pgdata")


def _socket_path() -> Path | None:
    """The cluster's unix socket, from postmaster.pid (line 5: socket folder); None if none."""
    try:
        lines = (_pgdata() / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 5 or not lines[4].strip():
        return None
    socket = Path(lines[4].strip()) / f".s.PGSQL.{_db_port()}"
    return socket if socket.exists() else None


def _configured_password() -> str:
    """The password Pulp uses: DATABASES in the instance's settings.py."""
    settings = runpy.run_path(str(_data_dir() / "settings.py"))
    return settings["DATABASES"]["default"]["PASSWORD"]


def _connect(
    host: str, password: str | None, *, user: str | None = None
) -> subprocess.CompletedProcess:
    """``psql -c 'SELECT 1'`` as ``postgres`` on ``host``, as OS ``user`` (None: ourselves).

    Only the variables set here reach psql (no password file, no ~/.pgpass); ``-w``: no prompt.
    """
    env = {
        "PATH": "/usr/bin:/bin",
        "PGCONNECT_TIMEOUT": "10",
        "PGPASSFILE": "/nonexistent/pgpass",
        "PGSSLMODE": "disable",
        "LC_ALL": "C",
    }
    if password is not None:
        env["PGPASSWORD"] = password
    command = [_psql(), "-X", "-w", "-h", host, "-p", str(_db_port()), "-U", "postgres"]
    command += ["-d", "postgres", "-tAc", "SELECT 1"]
    if user is not None:
        runuser = shutil.which("runuser", path="/usr/sbin:/usr/bin:/sbin:/bin") or "runuser"
        command = [runuser, "-u", user, "--", *command]
    return subprocess.run(
        command, env=env, cwd="/", capture_output=True, text=True, timeout=60, check=False
    )


def _assert_refused(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode != 0 and result.stdout.strip() != "1", (
        f"{what}: connected to the embedded PostgreSQL as postgres "
        f"(stdout {result.stdout!r}, stderr {result.stderr!r})"
    )


def test_configured_password_is_a_generated_secret():
    """settings.py holds the password of secrets/db_password (0600), and it logs in."""
    password_file = _data_dir() / "secrets" / "db_password"
    assert password_file.is_file(), f"{password_file} missing"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = _configured_password()
    assert len(password) >= 32
    assert password == password_file.read_text().strip()
    assert stat.S_IMODE((_data_dir() / "settings.py").stat().st_mode) == 0o600

    result = _connect("127.0.0.1", password)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr


@pytest.mark.parametrize("password", [None, "", "wrong-password"], ids=["none", "empty", "wrong"])
def test_tcp_needs_the_password(password):
    """Even the instance's own OS user cannot log in over TCP without the password."""
    _assert_refused(_connect("127.0.0.1", password), f"127.0.0.1 with password {password!r}")


@needs_root
@pytest.mark.parametrize("password", [None, "", "wrong-password"], ids=["none", "empty", "wrong"])
def test_other_os_user_cannot_connect_over_tcp(password):
    what = f"{OTHER_USER} on 127.0.0.1:{_db_port()} with password {password!r}"
    _assert_refused(_connect("127.0.0.1", password, user=OTHER_USER), what)


@needs_root
def test_other_os_user_gets_in_only_with_the_password():
    """The refusals above are password checks: the same user with the right one gets in."""
    result = _connect("127.0.0.1", _configured_password(), user=OTHER_USER)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr


@needs_root
@pytest.mark.parametrize("password", [None, "", "wrong-password"], ids=["none", "empty", "wrong"])
def test_other_os_user_cannot_connect_over_the_unix_socket(password):
    socket = _socket_path()
    if socket is None:
        pytest.skip("the embedded PostgreSQL has no unix socket")
    folder = socket.parent
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, (
        f"{folder} (unix socket folder) is open to other users"
    )
    what = f"{OTHER_USER} on {socket} with password {password!r}"
    _assert_refused(_connect(str(folder), password, user=OTHER_USER), what)
