"""Read a repository of another registry through a ContainerRemote: tags, manifests, blobs.

Every request goes through the remote's downloaders (pulpcore's HTTP downloader with the
remote's TLS, proxy, timeout and credential settings, and the registry token flow of
``registry_downloader``), so ``download_concurrency`` bounds the parallel requests. Manifests
are checked with the rules a push is checked by (``parse_manifest``) and against the digest
they were asked by or announced with; blobs against their digest and declared size. Anything
that fails is a ``SyncError`` naming what and why, and nothing of it is kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urljoin

import aiohttp
from pulpcore.plugin.download import DownloadResult
from pulpcore.plugin.exceptions import (
    DigestValidationError,
    SizeValidationError,
    TimeoutException,
)

from pulp_container.app.exceptions import DigestInvalid, RegistryError
from pulp_container.app.models import ContainerRemote
from pulp_container.app.oci import Digest
from pulp_container.app.services.manifests import ParsedManifest, parse_manifest
from pulp_container.constants import CONTENT_DIGEST_HEADER, MANIFEST_MEDIA_TYPES

MANIFEST_ACCEPT = ", ".join(sorted(MANIFEST_MEDIA_TYPES))
# Content that does not match its digest is not retried: it is wrong, not lost.
_NOT_RETRIED = [DigestValidationError, SizeValidationError]
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')

T = TypeVar("T")


class SyncError(Exception):
    """A sync or a pull-through could not complete; the message says what and why."""


class RemoteSource:
    """The repository ``remote.upstream_name`` of the registry at ``remote.url``."""

    def __init__(self, remote: ContainerRemote) -> None:
        self.remote = remote
        self.base = f"{remote.url.rstrip('/')}/v2/{remote.upstream_name}"

    async def tag_names(self) -> list[str]:
        """Every tag, following ``Link`` pages (OCI distribution spec, "Listing Tags")."""
        names: list[str] = []
        url: str | None = f"{self.base}/tags/list"
        while url:
            result = await self._fetch(url)
            body = _take_file(result)
            try:
                names += json.loads(body).get("tags") or []
            except (ValueError, AttributeError):
                raise SyncError(f"{url}: the tag list is not JSON") from None
            link = _NEXT_LINK.search(result.headers.get("Link", ""))
            url = urljoin(url, link.group(1)) if link else None
        return names

    async def manifest(self, reference: str, expected: Digest | None = None) -> ParsedManifest:
        """The manifest ``reference`` (a tag or a digest), checked as a push is."""
        where = f"{self.remote.upstream_name}:{reference}"
        result = await self._fetch(f"{self.base}/manifests/{reference}", accept=MANIFEST_ACCEPT)
        body = _take_file(result)
        try:
            parsed = parse_manifest(body, result.headers.get("Content-Type"))
        except RegistryError as error:
            raise SyncError(f"manifest {where} rejected: {error.detail}") from None
        announced = result.headers.get(CONTENT_DIGEST_HEADER)
        try:
            claimed = expected or (Digest.parse(announced) if announced else None)
        except DigestInvalid:
            raise SyncError(f"manifest {where}: malformed digest {announced!r}") from None
        if claimed is not None and Digest.of(body, claimed.algorithm) != claimed:
            raise SyncError(f"manifest {where} rejected: its content does not match {claimed}")
        return parsed

    def blob_url(self, digest: Digest) -> str:
        return f"{self.base}/blobs/{digest}"

    async def blob(self, digest: Digest, size: int, url: str | None = None) -> DownloadResult:
        """The blob's bytes (at ``url``, else at this repository) in a temporary file, verified
        against its digest and size."""
        return await self._fetch(
            url or self.blob_url(digest),
            expected_digests={digest.algorithm: digest.encoded},
            expected_size=size,
        )

    async def _fetch(self, url: str, **options) -> DownloadResult:
        downloader = self.remote.get_downloader(url=url, **options)
        try:
            return await downloader.run(extra_data={"disable_retry_list": _NOT_RETRIED})
        except DigestValidationError:
            raise SyncError(f"{url} rejected: its content does not match its digest") from None
        except SizeValidationError:
            raise SyncError(f"{url} rejected: its size is not the declared size") from None
        except aiohttp.ClientResponseError as error:
            raise SyncError(f"{url}: the remote answered {error.status} {error.message}") from None
        except (TimeoutError, aiohttp.ClientError, TimeoutException, OSError) as error:
            reason = str(error) or type(error).__name__
            raise SyncError(f"{url}: the remote is unreachable ({reason})") from None


def _take_file(result: DownloadResult) -> bytes:
    """The bytes of a small download (a manifest, a tag list); its temporary file goes."""
    with open(result.path, "rb") as downloaded:
        body = downloaded.read()
    os.unlink(result.path)
    return body


def run_with_remote(remote: ContainerRemote, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` in this thread's event loop; the remote's connections close after.

    pulpcore's downloader factory binds its HTTP session to the thread's event loop (and closes
    it there at exit), so the loop stays this thread's, as in pulpcore's own sync tasks.
    """
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

    async def work_then_close() -> T:
        try:
            return await work()
        finally:
            await remote.download_factory._session.close()

    return loop.run_until_complete(work_then_close())
