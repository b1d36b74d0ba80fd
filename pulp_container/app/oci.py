"""Value objects of the OCI Distribution API, parsed once at the edge.

Nothing here touches the database; views parse strings into these values and pass values on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pulp_container.app.exceptions import (
    DigestInvalid,
    ManifestUnknown,
    NameInvalid,
    RangeInvalid,
)
from pulp_container.constants import MANIFEST_MEDIA_TYPES

# OCI distribution spec, "Pulling manifests": <name> grammar, and at most 255 characters
# together with the registry host (we keep the limit on the name alone).
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
NAME_MAX_LENGTH = 255

# OCI image spec, "Digests": algorithm ":" encoded. We verify sha256 and sha512 content.
_DIGEST_PATTERN = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_ENCODED_LENGTH = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")

# OCI distribution spec: <reference> as a tag.
TAG_PATTERN = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")


@dataclass(frozen=True, slots=True)
class Digest:
    """A content digest such as ``sha256:<64 hex>``."""

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, value: str | None) -> Digest:
        """Return the digest in ``value``, or raise DigestInvalid (400)."""
        match = _DIGEST_PATTERN.fullmatch(value or "")
        if not match:
            raise DigestInvalid(f"malformed digest {value!r}")
        algorithm, encoded = match.groups()
        if algorithm not in _ENCODED_LENGTH:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != _ENCODED_LENGTH[algorithm] or not _HEX.fullmatch(encoded):
            raise DigestInvalid(f"malformed {algorithm} digest {value!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


@dataclass(frozen=True, slots=True)
class Reference:
    """A manifest reference: a tag or a digest."""

    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, value: str) -> Reference:
        """Return the reference in ``value``; a malformed one is an unknown manifest.

        A value is a digest when it names a digest algorithm we know (``sha256:``...); anything
        else with a colon, such as ``latest:foo``, is a malformed tag, not a malformed digest.
        """
        algorithm, colon, _ = value.partition(":")
        if colon and algorithm in _ENCODED_LENGTH:
            return cls(digest=Digest.parse(value))
        if TAG_PATTERN.fullmatch(value):
            return cls(tag=value)
        raise ManifestUnknown(f"invalid tag {value!r}")

    def __str__(self) -> str:
        return self.tag if self.tag is not None else str(self.digest)


@dataclass(frozen=True, slots=True)
class RepositoryName:
    """A registry repository name such as ``team/sub/app``."""

    value: str

    @classmethod
    def parse(cls, value: str) -> RepositoryName:
        if len(value) > NAME_MAX_LENGTH or not NAME_PATTERN.fullmatch(value):
            raise NameInvalid(f"invalid repository name {value!r}")
        return cls(value)

    @property
    def namespace(self) -> str:
        """The first path segment, whose owner may create repositories under it."""
        return self.value.split("/", 1)[0]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ContentRange:
    """The inclusive byte range of a chunk, from a ``Content-Range`` header."""

    start: int
    end: int

    @classmethod
    def parse(cls, value: str, current_offset: int) -> ContentRange:
        match = _CONTENT_RANGE.fullmatch(value.strip())
        if not match:
            raise RangeInvalid(f"malformed Content-Range {value!r}", current_offset)
        start, end = int(match.group(1)), int(match.group(2))
        if end < start:
            raise RangeInvalid(f"malformed Content-Range {value!r}", current_offset)
        return cls(start, end)

    @property
    def length(self) -> int:
        return self.end - self.start + 1


# Largest page a listing returns, whatever ``n`` asks (a larger n gets this many and a Link).
PAGE_MAX = 10_000
_PAGE_SIZE = re.compile(r"(-)?([0-9]{1,30})")


def page_size(value: str | None) -> int | None:
    """The ``n`` query parameter: None when absent or not a number, else clamped to 0..PAGE_MAX
    (a number beyond 64 bits would otherwise reach the database as an overflowing LIMIT)."""
    match = _PAGE_SIZE.fullmatch(value.strip()) if value is not None else None
    if match is None:
        return None
    return 0 if match.group(1) else min(int(match.group(2)), PAGE_MAX)


def is_clean_text(value: str) -> bool:
    """Whether ``value`` can be stored and compared as text: no NUL (PostgreSQL refuses it in
    text) and no lone surrogate (it has no UTF-8 encoding)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def negotiate_media_type(stored: str, accept_header: str) -> bool:
    """Return whether a client sending ``accept_header`` takes a manifest of type ``stored``.

    OCI distribution spec, "Pulling manifests": a client lists the types it understands in
    Accept; a missing header, ``*/*`` or an Accept with no manifest type at all takes anything
    (older clients send none).
    """
    accepted = {part.split(";", 1)[0].strip() for part in accept_header.split(",") if part}
    if not accepted & MANIFEST_MEDIA_TYPES:
        return True
    return stored in accepted or "*/*" in accepted
