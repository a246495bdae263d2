"""The HTTP client's preparation (issue 9): what ``prepare`` does ahead of a request never changes what the
request does, and the token endpoint's loggable forms are the sanitized URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codex_login.errors import TransportError
from codex_login.http import MAX_PARSED_URLS, HttpClient, HttpSettings
from codex_login.oauth import loggable_token_endpoint
from tests.support.scripted_issuer import Answer, ScriptedIssuer

SETTINGS = HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0)


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        scripted.routes["/echo"] = lambda rec: Answer.text(200, f"{rec.method} {rec.path} {rec.body.decode()}")
        yield scripted


def test_a_prepared_url_is_requested_as_given_every_time(issuer: ScriptedIssuer) -> None:
    url = f"{issuer.url}/echo?a=1&b=%2F"
    with HttpClient(SETTINGS) as client:
        client.prepare(url)
        first = client.post_form(url, "x=1")
        second = client.post_form(url, "x=2")
        third = client.get(url)
    assert [r.text() for r in (first, second, third)] == [
        "POST /echo?a=1&b=%2F x=1",
        "POST /echo?a=1&b=%2F x=2",
        "GET /echo?a=1&b=%2F ",
    ]
    assert [r.path for r in issuer.requests] == ["/echo?a=1&b=%2F"] * 3


def test_many_urls_are_all_requested_correctly_past_the_parse_cache(issuer: ScriptedIssuer) -> None:
    with HttpClient(SETTINGS) as client:
        for n in range(MAX_PARSED_URLS + 3):
            assert client.get(f"{issuer.url}/echo?n={n}").text() == f"GET /echo?n={n} "


@pytest.mark.parametrize("url", ["http://[bad/oauth/token", "http://exa mple.com/oauth/token", "http://:0/x"])
def test_prepare_never_raises_and_leaves_the_error_to_the_request(url: str) -> None:
    def failure(client: HttpClient) -> tuple[type[BaseException], str]:
        with pytest.raises((TransportError, ValueError, httpx.InvalidURL)) as caught:
            client.post_form(url, "a=b")
        return type(caught.value), str(caught.value)

    with HttpClient(SETTINGS) as fresh:
        unprepared = failure(fresh)
    with HttpClient(SETTINGS) as prepared:
        prepared.prepare(url)
        assert failure(prepared) == unprepared


def test_loggable_token_endpoint_is_the_sanitized_issuer_and_endpoint() -> None:
    assert loggable_token_endpoint("https://user:CNRYsecret@Auth.Example.COM:443/tenant") == (
        "https://auth.example.com/tenant",
        "https://auth.example.com/tenant/oauth/token",
    )
    assert loggable_token_endpoint("http://127.0.0.1:1455/") == (
        "http://127.0.0.1:1455/",
        "http://127.0.0.1:1455/oauth/token",
    )
    assert loggable_token_endpoint("https://auth.example.com/?code=CNRYcode")[0] == (
        "https://auth.example.com/?code=%3Credacted%3E"
    )


def test_an_https_url_after_a_plain_http_one_still_uses_the_ca_source(issuer: ScriptedIssuer, tmp_path: Path) -> None:
    # Plain HTTP needs no trust anchors, so the CA file is not read for it; an https URL asked for later by the
    # same client must still be verified with the CA source the environment selects, not with a transport
    # built for the first URL (httpx's default bundle).
    missing = tmp_path / "missing-ca.pem"
    settings = HttpSettings(env={"CODEX_CA_CERTIFICATE": str(missing)}, total_timeout=5.0, connect_timeout=5.0)
    with HttpClient(settings) as client:
        assert client.post_form(f"{issuer.url}/echo", "a=1").text() == "POST /echo a=1"
        with pytest.raises(TransportError) as caught:
            client.post_form(f"https://127.0.0.1:{issuer.port}/echo", "a=2")
    assert caught.value.transport_kind == "ca_config"
    assert f"Failed to read CA certificate file {missing} selected by CODEX_CA_CERTIFICATE" in str(caught.value)
    assert [r.body for r in issuer.requests] == [b"a=1"]
