"""The shape of a pushed manifest: JSON types and values, checked before anything is stored.

OCI image spec v1.1 ("Image Manifest", "Image Index", "Descriptors") and Docker image manifest
v2 schema 2 (and its manifest list). A body is UTF-8 JSON (no byte order mark, no other
encoding); every string is free of NUL and of lone surrogates, which PostgreSQL cannot store;
every field has its JSON type; every digest follows the digest grammar; sizes are integers in
0..2**63-1; annotations are maps of strings to strings. Any violation is MANIFEST_INVALID.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pulp_container.app.exceptions import DigestInvalid, ManifestInvalid
from pulp_container.app.oci import Digest, is_clean_text
from pulp_container.constants import INDEX_MANIFEST_TYPES, SCHEMA_VERSION

SIZE_MAX = 2**63 - 1


def load_document(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``: UTF-8 only, no NaN or Infinity, clean strings throughout."""
    if body.startswith(b"\xef\xbb\xbf"):
        raise ManifestInvalid("manifest starts with a byte order mark; send UTF-8 JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestInvalid("manifest is not UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
        _check_text(document, "manifest")
    except ValueError as error:
        raise ManifestInvalid(f"manifest is not valid JSON: {error}") from None
    except RecursionError:
        raise ManifestInvalid("manifest nests too deep") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_text(value: Any, where: str) -> None:
    if isinstance(value, str):
        if not is_clean_text(value):
            raise ManifestInvalid(f"{where}: text with NUL or a lone surrogate")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if is_clean_text(key) else where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}[{index}]")


def check_document(document: dict[str, Any], media_type: str) -> None:
    """Raise MANIFEST_INVALID unless ``document`` has the fields and types of ``media_type``."""
    version = document.get("schemaVersion")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ManifestInvalid("schemaVersion must be the integer 2")
    _optional(document, "mediaType", _string, "manifest")
    _optional(document, "artifactType", _string, "manifest")
    _optional(document, "annotations", _annotations, "manifest")
    _optional(document, "subject", check_descriptor, "manifest")
    if media_type in INDEX_MANIFEST_TYPES:
        manifests = document.get("manifests")
        if not isinstance(manifests, list):
            raise ManifestInvalid("an index needs a list of manifests")
        for index, entry in enumerate(manifests):
            check_descriptor(entry, f"manifests[{index}]", listed=True)
        return
    if not isinstance(document.get("config"), dict) or not isinstance(document.get("layers"), list):
        raise ManifestInvalid("an image manifest needs a config and a list of layers")
    check_descriptor(document["config"], "config")
    for index, layer in enumerate(document["layers"]):
        check_descriptor(layer, f"layers[{index}]")


def check_descriptor(value: Any, where: str, listed: bool = False) -> None:
    """OCI image spec, "Descriptors": mediaType, digest and size are required."""
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} is not a descriptor object")
    _string(value.get("mediaType"), f"{where}.mediaType")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is not a string")
    try:
        Digest.parse(digest)
    except DigestInvalid as error:
        raise ManifestInvalid(f"{where}.digest: {error.detail}") from None
    size = value.get("size")
    if type(size) is not int or not 0 <= size <= SIZE_MAX:
        raise ManifestInvalid(f"{where}.size must be an integer from 0 to 2**63-1")
    _optional(value, "urls", _strings, where)
    _optional(value, "annotations", _annotations, where)
    _optional(value, "data", _string, where)
    _optional(value, "artifactType", _string, where)
    if listed:
        _optional(value, "platform", _platform, where)


def _optional(document: dict, field: str, check: Callable[[Any, str], None], where: str) -> None:
    if field in document:
        check(document[field], f"{where}.{field}")


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise ManifestInvalid(f"{where} is not a string")


def _strings(value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ManifestInvalid(f"{where} is not a list of strings")


def _annotations(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestInvalid(f"{where} is not a map of strings to strings")


def _platform(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} is not an object")
    _string(value.get("architecture"), f"{where}.architecture")
    _string(value.get("os"), f"{where}.os")
    for field in ("os.version", "variant"):
        _optional(value, field, _string, where)
    for field in ("os.features", "features"):
        _optional(value, field, _strings, where)
