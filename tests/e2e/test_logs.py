"""Logs a person can read: access lines in the combined log format (or JSON with
``PULP_LOG_FORMAT=json``), and no WARNING for what the protocol does all day (a client asking
whether a blob exists, being sent to the token server)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import pytest

from harness import server
from harness.registry_http import RunningRegistry

# host ident user [time] "request" status bytes "referer" "user agent" duration
COMBINED = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]+\] "[A-Z]+ \S+ HTTP/[\d.]+" \d{3} (\d+|-) "[^"]*" "[^"]*" \d+ms$'
)
NO_BLOB = "sha256:" + "0" * 64


def _lines_naming(log: Path, marker: str, wanted: int = 1, timeout: float = 10.0) -> list[str]:
    """The lines of ``log`` that name ``marker``, once there are ``wanted`` (access lines are
    written after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        if len(lines) >= wanted or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def _api_log() -> Path:
    if os.environ.get("PULP_E2E_URL"):
        pytest.skip("the server's logs are not ours to read (PULP_E2E_URL)")
    return server.data_dir() / "logs" / "api.log"


def test_an_access_line_is_in_the_combined_log_format_and_a_404_blob_check_warns_nothing(
    registry: RunningRegistry,
):
    log = _api_log()
    name = f"e2e/logs-{secrets.token_hex(6)}"

    response = registry.http().blob_exists(name, NO_BLOB)

    assert response.status_code == 404
    lines = _lines_naming(log, name, wanted=2)
    access = [line for line in lines if f"HEAD /v2/{name}/blobs/" in line]
    assert [line for line in access if '" 401 ' in line], lines
    assert [line for line in access if '" 404 ' in line], lines
    assert all(COMBINED.match(line) for line in access), access
    assert not [line for line in lines if "WARNING" in line or line.startswith("(")], lines


def test_with_pulp_log_format_json_every_line_is_a_json_object(
    registry: RunningRegistry, tmp_path: Path
):
    _api_log()
    port = server.free_port()
    log = tmp_path / "api.log"
    process = server.start_api_process(port, log, {"PULP_LOG_FORMAT": "json"}, workers=1)
    try:
        url = f"https://127.0.0.1:{port}"
        name = f"e2e/logs-json-{secrets.token_hex(6)}"
        http = registry.http()
        response = http.request("HEAD", f"{url}/v2/{name}/blobs/{NO_BLOB}")
        assert response.status_code == 404
        lines = _lines_naming(log, name, wanted=2)
    finally:
        server.stop_server(process)

    entries = [json.loads(line) for line in lines]
    assert entries and all(entry["type"] == "access" for entry in entries), lines
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("HEAD", f"/v2/{name}/blobs/{NO_BLOB}", 401),
        ("HEAD", f"/v2/{name}/blobs/{NO_BLOB}", 404),
    ]
    started = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert all(json.loads(line)["type"] in ("access", "log") for line in started)
