"""Docs that cannot drift: every shell block of README.md and docs/*.md runs against the server.

A shell block is a fence whose info string is ``bash``, ``sh``, ``shell`` or ``console``. A
block not meant to run here (``make run`` stays in the foreground, ``make test`` would run this
suite again, a ``git clone`` of a URL) says so in its info string:
```` ```bash no-run: <why> ````. Every other block runs, one page per bash process, in order,
so that ``export``, ``alias`` and ``cd`` carry on to the next block as they do for a reader.

- ``bash`` blocks: every command must succeed.
- ``console`` blocks: the commands are the ``$ `` lines (with ``\\`` continuations); each must
  succeed, and what the page shows after it must have the shape of what it printed: JSON of
  the same type with the same keys (every key the page shows, for objects and the first item
  of lists), or, for text, each shown line matching a printed line once digests, hrefs, ids,
  numbers and timestamps are set aside. A shown ``...`` line stands for any lines.

The docs speak of the server ``make run`` starts (``127.0.0.1:24817``, ``.pulp/``); the
commands are pointed at the test server (its ports, its data folder) before they run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import server
from harness.registry_http import RunningRegistry

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
PAGES = [REPOSITORY_ROOT / "README.md", *sorted((REPOSITORY_ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
PAGE_TIMEOUT = 300


@dataclass
class Command:
    line: int
    text: str
    shown: list[str] = field(default_factory=list)
    checks_output: bool = False


@dataclass
class Block:
    page: Path
    line: int
    info: str
    commands: list[Command]

    @property
    def runs(self) -> bool:
        words = self.info.split()
        marked = any(word.startswith("no-run") for word in words[1:])
        return bool(words) and words[0] in SHELLS and not marked


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        if not info or info.split()[0] not in SHELLS:
            continue
        line = text.count("\n", 0, match.start()) + 2
        body = match.group("body")
        if info.split()[0] == "console":
            commands = _console_commands(body, line)
        else:
            commands = _script_commands(body, line)
        blocks.append(Block(page, line - 1, info, commands))
    return blocks


def _joined(lines: list[str], start: int) -> tuple[str, int]:
    """The command starting at ``lines[start]`` with its ``\\`` continuations, and the index
    of the line after it."""
    parts = [lines[start]]
    index = start
    while parts[-1].rstrip().endswith("\\") and index + 1 < len(lines):
        index += 1
        parts.append(lines[index])
    return "\n".join(parts), index + 1


def _script_commands(body: str, first_line: int) -> list[Command]:
    lines = body.splitlines()
    commands, index = [], 0
    while index < len(lines):
        if not lines[index].strip() or lines[index].lstrip().startswith("#"):
            index += 1
            continue
        text, after = _joined(lines, index)
        commands.append(Command(first_line + index, text))
        index = after
    return commands


def _console_commands(body: str, first_line: int) -> list[Command]:
    lines = body.splitlines()
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        if lines[index].startswith("$ "):
            start = index
            lines[index] = lines[index][2:]
            text, index = _joined(lines, index)
            commands.append(Command(first_line + start, text, checks_output=True))
        elif commands:
            commands[-1].shown.append(lines[index])
            index += 1
        else:
            index += 1
    return commands


# --- pointing the docs at the test server -------------------------------------------------------


def localized(command: str, registry: RunningRegistry) -> str:
    """``command`` as it must run against the test server."""
    api_port = registry.host.rsplit(":", 1)[1]
    content_port = os.environ.get("PULP_CONTENT_PORT", "24816")
    data = str(server.data_dir().resolve())
    command = command.replace("127.0.0.1:24817", f"127.0.0.1:{api_port}")
    command = command.replace("127.0.0.1:24816", f"127.0.0.1:{content_port}")
    command = re.sub(r"(\$PWD/|\./)?\.pulp/", data + "/", command)
    return re.sub(r"^cd pulp_container$", f"cd {REPOSITORY_ROOT}", command, flags=re.M)


# --- output shapes ----------------------------------------------------------------------------

_VARIABLE = [
    (re.compile(r"sha256:[0-9a-f]{64}"), "<digest>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"[0-9a-f]{12,}"), "<hex>"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?"), "<time>"),
    (re.compile(r"/tmp/\S+|/home/\S+|/root/\S+|/work/\S+"), "<path>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def text_shape(line: str) -> str:
    for pattern, replacement in _VARIABLE:
        line = pattern.sub(replacement, line)
    return line.strip()


def json_shape_mismatch(shown: object, printed: object) -> str | None:
    """Why ``printed`` does not have the shape of ``shown``, or None."""
    if isinstance(shown, dict):
        if not isinstance(printed, dict):
            return f"an object was shown, {type(printed).__name__} printed"
        missing = sorted(set(shown) - set(printed))
        return f"keys {missing} shown but not printed" if missing else None
    if isinstance(shown, list):
        if not isinstance(printed, list):
            return f"a list was shown, {type(printed).__name__} printed"
        if shown and not printed:
            return "a non-empty list was shown, an empty one printed"
        if shown and printed:
            return json_shape_mismatch(shown[0], printed[0])
        return None
    return None


def shape_mismatch(shown: list[str], printed: str) -> str | None:
    shown = [line for line in shown if line.strip()]
    if not shown:
        return None
    text = "\n".join(shown)
    if text.lstrip()[:1] in "[{":
        try:
            expected = json.loads(text)
        except ValueError:
            expected = None
        if expected is not None:
            try:
                return json_shape_mismatch(expected, json.loads(printed))
            except ValueError:
                return "JSON was shown, the command printed something else"
    printed_shapes = {text_shape(line) for line in printed.splitlines()}
    for line in shown:
        if line.strip() in ("...", "…"):
            continue
        if text_shape(line) not in printed_shapes:
            return f"shown line {line!r} has no printed counterpart"
    return None


# --- running a page ---------------------------------------------------------------------------


def run_page(page: Path, registry: RunningRegistry, work: Path) -> list[str]:
    """Run every runnable block of ``page`` in one bash; return what failed."""
    commands = [command for block in blocks_of(page) if block.runs for command in block.commands]
    script = ["shopt -s expand_aliases", f"cd {work}"]
    outputs = []
    for number, command in enumerate(commands):
        output = work / f"{number}.out"
        status = work / f"{number}.rc"
        outputs.append((command, output, status))
        script.append(f"{{\n{localized(command.text, registry)}\n}} >{output} 2>&1")
        script.append(f"echo $? >{status}")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    }
    environment["PATH"] = f"{REPOSITORY_ROOT / '.venv' / 'bin'}:{environment.get('PATH', '')}"
    # pulp-cli keeps each server's API description in its cache, by URL: one left by an earlier
    # server on the same port (another checkout, an older schema) must not answer for this one.
    environment["XDG_CACHE_HOME"] = str(work / "cache")
    environment["XDG_CONFIG_HOME"] = str(work / "config")
    subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=environment,
        timeout=PAGE_TIMEOUT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    failures = []
    for command, output, status in outputs:
        where = f"{page.name}:{command.line}: $ {command.text}"
        printed = output.read_text(errors="replace") if output.exists() else ""
        code = status.read_text().strip() if status.exists() else "not run"
        if code != "0":
            failures.append(f"{where}\n  exit {code}\n  printed: {printed[-1500:]}")
            continue
        if command.checks_output and (why := shape_mismatch(command.shown, printed)):
            failures.append(f"{where}\n  {why}\n  printed: {printed[:1500]}")
    return failures


def _runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(block.runs for block in blocks_of(page))]


def test_every_shell_block_is_run_or_marked_no_run():
    """A shell block without an info string would escape both the runner and the reader."""
    for page in PAGES:
        for match in re.finditer(r"^```[ \t]*\n(?P<body>.*?)^```", page.read_text(), re.M | re.S):
            first = match.group("body").lstrip().split("\n", 1)[0]
            assert not first.startswith("$ "), f"{page.name}: a console block without 'console'"


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda page: page.name)
def test_the_commands_of_a_page_run_and_print_what_it_shows(
    page: Path, registry: RunningRegistry, tmp_path: Path
):
    if os.environ.get("PULP_E2E_URL"):
        pytest.skip("the docs' commands read the data folder of the server they run against")
    failures = run_page(page, registry, tmp_path)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    "shown, printed, mismatch",
    [
        (['{"name": "a", "id": 1}'], '{"name": "b", "id": 2, "more": 3}', False),
        (['{"name": "a", "gone": 1}'], '{"name": "b"}', True),
        (['[{"name": "a"}]'], "[]", True),
        (["Started background task /pulp/api/v3/tasks/<id>/", "Done."], "Done.\n", True),
        (
            ["Copying blob sha256:" + "a" * 64, "..."],
            "Getting image source signatures\nCopying blob sha256:" + "b" * 64 + "\n",
            False,
        ),
    ],
)
def test_an_output_shape_is_compared_by_structure_not_values(shown, printed, mismatch):
    assert (shape_mismatch(shown, printed) is not None) is mismatch
