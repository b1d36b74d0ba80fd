"""Hashes whose state can be saved and resumed by another process (an upload's next chunk).

Python's hashlib cannot hand a hash state to another process, and the ``rehash`` package that
could does not support OpenSSL 3. OpenSSL's digest contexts (``SHA256_CTX``, ``SHA512_CTX``,
...) are plain structs of a fixed size: their bytes are the whole state. They are kept with
the upload's row in the database, so a chunk may land on any API host and the digest is ready
at commit without reading the bytes again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterable

_LIBRARY = ctypes.util.find_library("crypto")
if _LIBRARY is None:  # pragma: no cover - every Python with hashlib links libcrypto
    raise ImportError("libcrypto (OpenSSL) not found: resumable hashes need it")
_CRYPTO = ctypes.CDLL(_LIBRARY)

# name -> (prefix of the OpenSSL functions, size of the context struct, digest size)
# (every digest Pulp may be told to keep: ALLOWED_CONTENT_CHECKSUMS)
_ALGORITHMS = {
    "sha256": ("SHA256", 112, 32),
    "sha512": ("SHA512", 216, 64),
    "sha384": ("SHA384", 216, 48),
    "sha224": ("SHA224", 112, 28),
    "sha1": ("SHA1", 96, 20),
    "md5": ("MD5", 92, 16),
}
for _prefix, _, _ in _ALGORITHMS.values():
    for _suffix, _argtypes in (
        ("Init", [ctypes.c_void_p]),
        ("Update", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
        ("Final", [ctypes.c_void_p, ctypes.c_void_p]),
    ):
        _function = getattr(_CRYPTO, f"{_prefix}_{_suffix}")
        _function.argtypes = _argtypes
        _function.restype = ctypes.c_int

SUPPORTED = frozenset(_ALGORITHMS)


class ResumableHash:
    """One algorithm's running hash; ``state()`` bytes recreate it in any process."""

    def __init__(self, name: str, state: bytes | None = None) -> None:
        prefix, size, self._digest_size = _ALGORITHMS[name]
        self.name = name
        self._update = getattr(_CRYPTO, f"{prefix}_Update")
        self._final = getattr(_CRYPTO, f"{prefix}_Final")
        if state is None:
            self._context = ctypes.create_string_buffer(size)
            getattr(_CRYPTO, f"{prefix}_Init")(self._context)
        else:
            if len(state) != size:
                raise ValueError(f"a {name} state is {size} bytes, not {len(state)}")
            self._context = ctypes.create_string_buffer(state, size)

    def update(self, data: bytes) -> None:
        self._update(self._context, bytes(data), len(data))

    def state(self) -> bytes:
        return self._context.raw

    def hexdigest(self) -> str:
        # Final consumes the context: finish a copy, so the hash may go on.
        context = ctypes.create_string_buffer(self._context.raw, len(self._context))
        digest = ctypes.create_string_buffer(self._digest_size)
        self._final(digest, context)
        return digest.raw.hex()


Hashers = dict[str, ResumableHash]


def new_hashers(algorithms: Iterable[str]) -> Hashers:
    return {name: ResumableHash(name) for name in algorithms}


def dump(hashers: Hashers) -> dict[str, str]:
    """The hashers' states as JSON (hex), for the upload's row."""
    return {name: hasher.state().hex() for name, hasher in hashers.items()}


def load(saved: dict[str, str] | None, algorithms: Iterable[str]) -> Hashers:
    """The hashers saved by ``dump``, or new ones for ``algorithms`` when nothing was saved."""
    if not saved:
        return new_hashers(algorithms)
    return {name: ResumableHash(name, bytes.fromhex(state)) for name, state in saved.items()}


def digests(hashers: Hashers) -> dict[str, str]:
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}
