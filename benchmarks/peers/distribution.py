"""Debian's ``docker-registry`` (distribution 2.8, the reference Go registry), run by hand.

One process (the production model of the Go binary) with a generated configuration: filesystem
storage under ``benchmarks/.work/distribution/storage`` (emptied at every start), TLS with a
self-signed certificate, Basic authentication against an htpasswd file (bcrypt, made with
Debian's ``htpasswd`` from ``apache2-utils``: distribution's only built-in password check), so
that it pays for authentication as ours does; JSON logs with one ``response completed`` entry
per request, listening on ``127.0.0.1:<free port>``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests
import urllib3

from benchmarks.peers import ADMIN, WORK_DIR, Peer, clean_environment, free_port

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

BINARY = "docker-registry"
STARTUP_TIMEOUT = 30.0

CONFIG = """\
version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
auth:
  htpasswd:
    realm: benchmark
    path: {htpasswd}
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {certificate}
    key: {key}
"""


def available() -> bool:
    return shutil.which(BINARY) is not None and shutil.which("htpasswd") is not None


def _version() -> str:
    completed = subprocess.run([BINARY, "--version"], capture_output=True, text=True)
    return completed.stdout.strip().split()[-1] if completed.stdout.strip() else "?"


def launch(data_dir: Path | None = None, port: int | None = None) -> Peer:
    if not available():
        raise RuntimeError(
            "docker-registry or htpasswd not installed"
            " (apt-get install -y docker-registry apache2-utils)"
        )
    started = time.monotonic()
    root = data_dir or WORK_DIR / "distribution"
    storage = root / "storage"
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    certificate, key = root / "server.crt", root / "server.key"
    if not certificate.exists() or not key.exists():
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "3650",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    htpasswd = root / "htpasswd"
    subprocess.run(
        ["htpasswd", "-B", "-b", "-c", str(htpasswd), *ADMIN], check=True, capture_output=True
    )
    port = port or free_port()
    config = root / "config.yml"
    config.write_text(
        CONFIG.format(
            storage=storage, port=port, certificate=certificate, key=key, htpasswd=htpasswd
        )
    )
    log = root / "registry.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [BINARY, "serve", str(config)],
            cwd=root,
            env=clean_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"https://127.0.0.1:{port}"

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            answer = requests.get(f"{url}/v2/", verify=False, timeout=2, auth=ADMIN)
            if answer.status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"docker-registry did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return Peer(
        name="distribution",
        url=url,
        credentials=ADMIN,
        access_log=log,
        log_format="distribution",
        api_pids=lambda: [process.pid] if process.poll() is None else [],
        stopper=stop,
        version=f"distribution {_version()}",
        notes=["htpasswd Basic authentication (bcrypt)"],
        started_in_s=time.monotonic() - started,
    )
