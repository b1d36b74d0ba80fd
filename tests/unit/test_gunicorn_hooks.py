"""The worker warm-up of pulp_container.gunicorn_hooks: one request of its own, never fatal."""

from __future__ import annotations

from types import SimpleNamespace

from pulp_container import gunicorn_hooks


def test_a_new_worker_answers_get_v2_once_before_taking_requests():
    seen = []

    def application(environ, start_response):
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["wsgi.input"].read()))
        start_response("401 Unauthorized", [])
        return [b"{}"]

    gunicorn_hooks._warm_up(SimpleNamespace(wsgi=application))

    assert seen == [("GET", "/v2/", b"")]


def test_a_warm_up_that_fails_leaves_the_worker_to_serve():
    def application(environ, start_response):
        raise RuntimeError("the database is down")

    gunicorn_hooks._warm_up(SimpleNamespace(wsgi=application))  # no exception


def test_a_worker_without_a_wsgi_application_is_left_alone():
    gunicorn_hooks._warm_up(SimpleNamespace())  # pulpcore-content's aiohttp worker
