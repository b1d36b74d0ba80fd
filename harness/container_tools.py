"""Run the real container clients (skopeo, podman) the way a user would, from tests.

Both wrappers raise ``ToolError`` (with the command and its stderr) when a command fails or
times out, and return stdout otherwise.

Client-side state is kept per test:

- skopeo keeps a blob-info cache (the list of repositories that already hold a blob, which
  drives its cross-repository mount attempts). Run as root it uses
  ``/var/lib/containers/cache`` whatever ``HOME`` says, so a hermetic skopeo runs as an
  unprivileged user (``pulptest``) with its own ``HOME``.
- podman runs as root on the ``vfs`` storage driver with its own ``--root``, ``--runroot`` and
  temporary directory, so it needs no kernel overlay support and leaves nothing behind. Its
  blob-info cache, though, is ``/var/lib/containers/cache`` whatever ``--root`` says (podman
  4.x as root); ``Podman(blob_info_cache=DIR)`` runs it in a private mount namespace with
  ``DIR`` bound over that folder, so that a test controls what the client remembers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

UNPRIVILEGED_USER = "pulptest"
# Where skopeo and podman keep their blob-info cache when they run as root.
SYSTEM_BLOB_INFO_CACHE = Path("/var/lib/containers/cache")


class ToolError(AssertionError):
    """A client command failed; the message carries its stderr."""


def run_command_bytes(
    command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
) -> bytes:
    """Run ``command``; return its stdout, or raise ``ToolError`` with its stderr."""
    try:
        completed = subprocess.run(
            list(command), capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as error:
        stderr = (error.stderr or b"").decode(errors="replace")
        raise ToolError(f"timed out after {timeout}s: {' '.join(command)}\n{stderr}") from error
    if completed.returncode != 0:
        raise ToolError(
            f"exit {completed.returncode}: {' '.join(command)}\n"
            f"stderr:\n{completed.stderr.decode(errors='replace')}\n"
            f"stdout:\n{completed.stdout.decode(errors='replace')[:2000]}"
        )
    return completed.stdout


def run_command(
    command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
) -> str:
    return run_command_bytes(command, timeout=timeout, env=env).decode()


def ensure_unprivileged_user(name: str = UNPRIVILEGED_USER) -> pwd.struct_passwd | None:
    """The test user, created if missing; ``None`` when we are not root and cannot create it."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        return None
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def open_to_everyone(path: Path) -> Path:
    """Create ``path`` writable by the unprivileged user (tests share files with it)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


@dataclass
class Skopeo:
    """skopeo against one registry.

    ``user``/``home``: run as that user with that ``HOME`` (a private blob-info cache); with
    ``user=None`` run as the current user. ``credentials`` are sent to the registry on every
    docker:// reference; ``cert_dir`` (a directory with ``ca.crt``) turns TLS verification
    on, otherwise it is off.
    """

    credentials: tuple[str, str] | None
    user: str | None = None
    home: Path | None = None
    cert_dir: Path | None = None
    timeout: float = 120.0

    def _prefix(self) -> list[str]:
        if self.user is None:
            return ["skopeo"]
        environment = [
            f"HOME={self.home}",
            f"XDG_RUNTIME_DIR={self.home}/run",
            "PATH=/usr/bin:/bin",
        ]
        return ["runuser", "-u", self.user, "--", "env", *environment, "skopeo"]

    def _tls(self, option: str) -> list[str]:
        if self.cert_dir is not None:
            return [f"--{option}-cert-dir={self.cert_dir}"]
        return [f"--{option}-tls-verify=false"]

    def _creds(self, option: str) -> list[str]:
        if self.credentials is None:
            return []
        user, password = self.credentials
        return [f"--{option}-creds={user}:{password}"]

    def copy_command(
        self, source: str, destination: str, *options: str, all_images: bool = False
    ) -> list[str]:
        arguments = [*self._prefix(), "copy", "--retry-times=0", *options]
        if all_images:
            arguments.append("--all")
        if source.startswith("docker://"):
            arguments += self._tls("src") + self._creds("src")
        if destination.startswith("docker://"):
            arguments += self._tls("dest") + self._creds("dest")
        return [*arguments, source, destination]

    def copy(self, source: str, destination: str, *options: str, all_images: bool = False) -> str:
        command = self.copy_command(source, destination, *options, all_images=all_images)
        return run_command(command, timeout=self.timeout)

    def inspect_raw(self, reference: str) -> bytes:
        """The manifest bytes the registry serves for ``reference`` (``docker://...``)."""
        command = [*self._prefix(), "inspect", "--raw", "--retry-times=0"]
        command += self._tls_inspect() + self._creds_inspect()
        return run_command_bytes([*command, reference], timeout=self.timeout)

    def inspect(self, reference: str) -> str:
        command = [*self._prefix(), "inspect", "--retry-times=0"]
        command += self._tls_inspect() + self._creds_inspect()
        return run_command([*command, reference], timeout=self.timeout)

    def _tls_inspect(self) -> list[str]:
        if self.cert_dir is not None:
            return [f"--cert-dir={self.cert_dir}"]
        return ["--tls-verify=false"]

    def _creds_inspect(self) -> list[str]:
        if self.credentials is None:
            return []
        user, password = self.credentials
        return [f"--creds={user}:{password}"]

    def start_copy(self, source: str, destination: str, *options: str) -> subprocess.Popen[bytes]:
        """Start a copy in its own process group, to be interrupted with ``kill``."""
        return subprocess.Popen(
            self.copy_command(source, destination, *options),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """Kill a copy started with ``start_copy`` (and ``runuser``'s child) at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@dataclass
class Podman:
    """podman as root with private vfs storage under ``state_dir``.

    podman refuses a run root path longer than 50 characters: keep ``state_dir`` short.
    """

    state_dir: Path
    credentials: tuple[str, str] | None
    cert_dir: Path | None = None
    timeout: float = 180.0
    blob_info_cache: Path | None = None

    def __post_init__(self) -> None:
        for name in ("root", "run", "tmp"):
            (self.state_dir / name).mkdir(parents=True, exist_ok=True)
        if self.blob_info_cache is not None:
            self.blob_info_cache.mkdir(parents=True, exist_ok=True)
            SYSTEM_BLOB_INFO_CACHE.mkdir(parents=True, exist_ok=True)

    def _base(self) -> list[str]:
        namespace: list[str] = []
        if self.blob_info_cache is not None:
            namespace = [
                "unshare",
                "--mount",
                "--propagation=private",
                "sh",
                "-c",
                'mount --bind "$1" "$2" && shift 2 && exec "$@"',
                "podman-with-cache",
                str(self.blob_info_cache),
                str(SYSTEM_BLOB_INFO_CACHE),
            ]
        return [
            *namespace,
            "podman",
            "--storage-driver=vfs",
            f"--root={self.state_dir / 'root'}",
            f"--runroot={self.state_dir / 'run'}",
            f"--tmpdir={self.state_dir / 'tmp'}",
            "--events-backend=none",
            "--cgroup-manager=cgroupfs",
        ]

    def _registry_options(self) -> list[str]:
        options = (
            [f"--cert-dir={self.cert_dir}"] if self.cert_dir is not None else ["--tls-verify=false"]
        )
        if self.credentials is not None:
            user, password = self.credentials
            options.append(f"--creds={user}:{password}")
        return options

    def __call__(self, *arguments: str) -> str:
        environment = {**os.environ, "TMPDIR": str(self.state_dir / "tmp")}
        return run_command([*self._base(), *arguments], timeout=self.timeout, env=environment)

    def pull(self, reference: str) -> str:
        """Pull ``reference``; return the image id podman prints (the config digest's hex)."""
        options = self._registry_options() if reference.startswith("docker://") else []
        output = self("pull", "--quiet", *options, reference)
        return output.strip().splitlines()[-1]

    def push(self, image: str, destination: str, digest_file: Path) -> str:
        """Push ``image``; return the manifest digest podman reports it pushed."""
        self("push", *self._registry_options(), f"--digestfile={digest_file}", image, destination)
        return digest_file.read_text().strip()

    def import_tarball(self, write: Callable[[IO[bytes]], object], reference: str) -> str:
        """``podman import``: an image of one layer from the tar that ``write`` streams into
        podman's stdin (nothing written to disk but podman's storage); return its id."""
        environment = {**os.environ, "TMPDIR": str(self.state_dir / "tmp")}
        process = subprocess.Popen(
            [*self._base(), "import", "--quiet", "-", reference],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        assert process.stdin and process.stdout and process.stderr
        with process.stdin:
            write(process.stdin)
        process.wait(timeout=self.timeout)  # --quiet: its output fits in the pipes
        stdout, stderr = process.stdout.read(), process.stderr.read()
        if process.returncode != 0:
            raise ToolError(f"podman import: exit {process.returncode}\n{stderr.decode()}")
        return stdout.decode().strip().splitlines()[-1]

    def image_inspect(self, image: str, template: str) -> str:
        return self("image", "inspect", f"--format={template}", image).strip()


def wait_for_output(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to ``seconds`` for ``process``; True when it has already exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return True
        time.sleep(0.05)
    return False


@dataclass
class Buildah:
    """buildah as root with private vfs storage under ``state_dir`` (as ``Podman``)."""

    state_dir: Path
    credentials: tuple[str, str] | None
    timeout: float = 180.0

    def __post_init__(self) -> None:
        for name in ("root", "run", "tmp"):
            (self.state_dir / name).mkdir(parents=True, exist_ok=True)

    def __call__(self, *arguments: str) -> str:
        environment = {**os.environ, "TMPDIR": str(self.state_dir / "tmp")}
        command = [
            "buildah",
            "--storage-driver=vfs",
            f"--root={self.state_dir / 'root'}",
            f"--runroot={self.state_dir / 'run'}",
            *arguments,
        ]
        return run_command(command, timeout=self.timeout, env=environment)

    def _registry_options(self) -> list[str]:
        options = ["--tls-verify=false"]
        if self.credentials is not None:
            user, password = self.credentials
            options.append(f"--creds={user}:{password}")
        return options

    def pull(self, reference: str) -> str:
        """Pull ``reference``; return the image id buildah prints."""
        options = self._registry_options() if reference.startswith("docker://") else []
        return self("pull", "--quiet", *options, reference).strip().splitlines()[-1]

    def push(self, image: str, destination: str, digest_file: Path) -> str:
        """Push ``image``; return the manifest digest buildah reports it pushed."""
        self("push", *self._registry_options(), f"--digestfile={digest_file}", image, destination)
        return digest_file.read_text().strip()
