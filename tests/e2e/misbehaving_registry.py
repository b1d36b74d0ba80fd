"""A registry that serves images from an OCI layout, and misbehaves on request.

Real registries refuse to store broken content, so the faults a mirror must survive (a remote
that goes away in the middle of a blob, bytes that do not match their digest, a manifest that is
not one, a digest header that lies) come from this small HTTP server (read-only, no auth). It
counts the blob requests it answers, which is how a test tells what a sync downloaded.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.oci_images import MEDIA_TYPE_MANIFEST, ImageInfo, read_blob


@dataclass
class Faults:
    """What to do wrong. Blob digests in ``dropped`` are cut off after half their bytes (the
    connection closes), those in ``corrupted`` come back with other bytes of the same size;
    ``manifest_bodies`` replaces a tag's manifest bytes, ``digest_headers`` its announced digest."""

    dropped: set[str] = field(default_factory=set)
    corrupted: set[str] = field(default_factory=set)
    manifest_bodies: dict[str, bytes] = field(default_factory=dict)
    digest_headers: dict[str, str] = field(default_factory=dict)


class MisbehavingRegistry:
    """``/v2/<name>/...`` for the images of ``layout`` named by their tags."""

    def __init__(self, layout: Path, name: str, images: dict[str, ImageInfo], port: int) -> None:
        self.layout, self.name, self.images = layout, name, images
        self.faults = Faults()
        self.blob_requests: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def manifest(self, reference: str) -> tuple[bytes, str]:
        for tag, image in self.images.items():
            if reference in (tag, image.manifest_digest):
                body = self.faults.manifest_bodies.get(tag)
                if body is None:
                    body = read_blob(self.layout, image.manifest_digest)
                return body, self.faults.digest_headers.get(tag, image.manifest_digest)
        raise KeyError(reference)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                prefix = f"/v2/{registry.name}/"
                path = self.path.split("?", 1)[0]
                if path in ("/v2/", "/v2"):
                    return self._send(200, b"{}", "application/json")
                if not path.startswith(prefix):
                    return self._send(404, b"{}", "application/json")
                kind, _, reference = path[len(prefix) :].rpartition("/")
                if kind == "tags" and reference == "list":
                    tags = {"name": registry.name, "tags": sorted(registry.images)}
                    return self._send(200, json.dumps(tags).encode(), "application/json")
                if kind == "manifests":
                    return self._manifest(reference)
                if kind == "blobs":
                    return self._blob(reference)
                return self._send(404, b"{}", "application/json")

            def _manifest(self, reference: str) -> None:
                try:
                    body, digest = registry.manifest(reference)
                except KeyError:
                    return self._send(404, b"{}", "application/json")
                self._send(200, body, MEDIA_TYPE_MANIFEST, {"Docker-Content-Digest": digest})

            def _blob(self, digest: str) -> None:
                registry.blob_requests[digest] += 1
                try:
                    data = read_blob(registry.layout, digest)
                except OSError:
                    return self._send(404, b"{}", "application/json")
                if digest in registry.faults.corrupted:
                    data = bytes(b ^ 0xFF for b in data)
                if digest in registry.faults.dropped:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                self._send(200, data, "application/octet-stream")

            def _send(self, status: int, body: bytes, media_type: str, headers=None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler
