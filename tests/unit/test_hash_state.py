"""Resumable hashes: a state saved after any byte, loaded elsewhere, ends at hashlib's digest."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from pulp_container.app import hash_state

DATA = os.urandom(3 * 1024 * 1024 + 17)


@pytest.mark.parametrize("algorithm", sorted(hash_state.SUPPORTED))
@pytest.mark.parametrize("cuts", [[0], [1], [63, 64, 65], [1000, 2_000_000, 3_000_000]])
def test_a_hash_resumed_from_saved_states_equals_hashlib(algorithm, cuts):
    hashers = hash_state.load(None, [algorithm])
    start = 0
    for cut in [*cuts, len(DATA)]:
        hashers[algorithm].update(DATA[start:cut])
        # Through JSON, as the upload's row keeps it.
        hashers = hash_state.load(json.loads(json.dumps(hash_state.dump(hashers))), [algorithm])
        start = cut

    assert hash_state.digests(hashers) == {algorithm: hashlib.new(algorithm, DATA).hexdigest()}


def test_reading_the_digest_does_not_end_the_hash():
    hashers = hash_state.new_hashers(["sha256"])
    hashers["sha256"].update(b"abc")
    assert hashers["sha256"].hexdigest() == hashlib.sha256(b"abc").hexdigest()
    hashers["sha256"].update(b"def")
    assert hashers["sha256"].hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_a_state_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError):
        hash_state.load({"sha256": "00" * 10}, ["sha256"])
