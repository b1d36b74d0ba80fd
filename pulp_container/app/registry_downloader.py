"""Downloads from another registry: pulpcore's HTTP downloader, plus the registry's token flow.

A registry answers an anonymous or Basic request with 401 and a challenge (Docker token
authentication specification, "How to authenticate"): ``WWW-Authenticate: Bearer realm=...,
service=..., scope=...``. The downloader then asks the realm for a token (with the remote's
username and password as Basic credentials, when it has them) and repeats the request with
``Authorization: Bearer <token>``. A challenge ``Basic`` is answered by the Basic credentials
pulpcore's factory already sends. Tokens are kept per scope for the remote's downloads, so N
parallel downloads ask the token server once.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from pulpcore.plugin.download import DownloaderFactory, HttpDownloader

_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')


class TokenCache:
    """Bearer tokens of one remote, by the challenge's realm, service and scope."""

    def __init__(self) -> None:
        self._tokens: dict[tuple, str] = {}
        self._lock = asyncio.Lock()

    def get(self, key: tuple) -> str | None:
        return self._tokens.get(key)

    def any(self) -> str | None:
        # A remote reads one upstream repository: one scope serves every download of it.
        return next(iter(self._tokens.values()), None)

    async def fetch(self, downloader: RegistryDownloader, challenge: dict[str, str]) -> str:
        key = challenge_key(challenge)
        async with self._lock:
            if key in self._tokens:
                return self._tokens[key]
            params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
            async with downloader.session.get(
                challenge["realm"], params=params, auth=downloader.auth, proxy=downloader.proxy
            ) as response:
                response.raise_for_status()
                answer = await response.json(content_type=None)
            token = answer.get("token") or answer.get("access_token")
            if not token:
                raise aiohttp.ClientError(f"token server {challenge['realm']} gave no token")
            self._tokens[key] = token
            return token


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a ``Bearer`` challenge, or None for any other scheme."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    parameters = dict(_CHALLENGE_PARAMETER.findall(rest))
    return parameters if "realm" in parameters else None


def challenge_key(challenge: dict[str, str]) -> tuple:
    return (challenge.get("realm"), challenge.get("service"), challenge.get("scope"))


class RegistryDownloader(HttpDownloader):
    """An HttpDownloader that sends ``Accept`` and answers Bearer challenges."""

    def __init__(self, *args, tokens: TokenCache | None = None, accept: str | None = None, **kw):
        self.tokens = tokens if tokens is not None else TokenCache()
        self.accept = accept
        super().__init__(*args, **kw)

    async def _run(self, extra_data=None):
        if self.download_throttler:
            await self.download_throttler.acquire()
        challenge = None
        for _attempt in range(2):
            headers = {"Accept": self.accept} if self.accept else {}
            token = self.tokens.get(challenge_key(challenge)) if challenge else self.tokens.any()
            auth = self.auth
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
                auth = None
            async with self.session.get(
                self.url, headers=headers, proxy=self.proxy, proxy_auth=self.proxy_auth, auth=auth
            ) as response:
                if response.status == 401 and token is None:
                    challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                    if challenge is not None:
                        await response.release()
                        await self.tokens.fetch(self, challenge)
                        continue
                self.raise_for_status(response)
                result = await self._handle_response(response)
                await response.release()
                return result
        raise aiohttp.ClientResponseError(
            response.request_info, (), status=401, message="refused after a token was issued"
        )


def registry_download_factory(remote) -> DownloaderFactory:
    return DownloaderFactory(
        remote, downloader_overrides={"http": RegistryDownloader, "https": RegistryDownloader}
    )
