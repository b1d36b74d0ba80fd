"""Where the bytes of uploads in progress are: chosen by the storage Pulp is configured with.

- ``upload_files``: the filesystem storage (the default), a file in the WORKING_DIRECTORY;
- ``upload_objects``: S3-compatible object storage (django-storages' S3Storage), an S3
  multipart upload; no API host needs another's disk.

Both offer the same functions, which ``services/uploads.py`` calls:

- ``create(pk) -> state``; ``write(pk, offset, state, stream, limit, hashers) -> Appended``
  (``.written``, ``.state``; ``.counted()`` once the row holds the new state, ``.discarded()``
  when it does not);
- ``has_bytes(pk, state)``; ``hash_received(pk, state, hashers)`` (last resort: re-reads);
- ``save_artifact(pk, state, size, digest_fields) -> Artifact`` (raises IntegrityError when
  the same bytes were saved first by another request); ``remove(pk, state)``.

The running hash state is not theirs: it is kept with the upload's row (``hash_state``).
"""

from __future__ import annotations

from types import ModuleType

from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

from pulp_container.app import upload_files, upload_objects


def uses_object_storage() -> bool:
    return isinstance(default_storage, S3Storage)


def store() -> ModuleType:
    return upload_objects if uses_object_storage() else upload_files
