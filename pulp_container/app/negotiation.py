"""Content negotiation for the registry's own views (``/v2/`` and ``/token/``)."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class HandBuiltResponses(DefaultContentNegotiation):
    """Registry responses are built by hand; Accept is read only by manifest pulls."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
