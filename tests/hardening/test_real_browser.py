"""Security matrix §4, group K: a real browser (Debian's headless Chromium through Playwright) against the real
``codex-login`` and the scripted issuer, loopback only.

* K1: the scripted issuer's ``/oauth/authorize`` redirects straight back to the callback with the code and
  the state it was given; Chromium follows it to the success page whatever else it fetches on the way
  (``/favicon.ico``, preconnects), and every request it makes goes to the issuer or to the loopback server
  (the pages load nothing from anywhere else).
* K2: DNS rebinding, simulated with ``--host-resolver-rules``: a page whose origin is ``attacker.test`` on the
  callback port (the first DNS answer, served here by a Playwright route) reads ``/cancel`` and ``/success``
  after the name was "rebound" to 127.0.0.1; the Host check (B1) refuses both, a page on another origin is
  refused by the cross-site check (B9), and the sign-in completes afterwards.

Chromium is required (tests/support/chromium.py: never skipped; ``scripts/test`` installs it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.hardening.conftest import Expect, Harness, RawReply, read_log
from tests.support.chromium import playwright_args, require_chromium, throwaway_profile
from tests.support.scripted_issuer import Answer, Recorded

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

ATTACKER = "attacker.test"


def redirect_with(code: str) -> Callable[[Recorded], Answer]:
    """``/oauth/authorize`` of an issuer that signs the user in at once and sends the browser back."""

    def answer(request: Recorded) -> Answer:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return Answer(302, b"", {"Location": location})

    return answer


@contextmanager
def chromium(*extra_flags: str) -> Iterator[BrowserContext]:
    """Headless Chromium with the suite's flags (tests/support/chromium.py) plus ``extra_flags``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, throwaway_profile() as profile:
        env: dict[str, str | float | bool] = dict(profile.env())
        context = pw.chromium.launch_persistent_context(
            str(profile.user_data_dir),
            executable_path=require_chromium(),
            headless=True,
            args=[*playwright_args(), *extra_flags],
            env=env,
            timeout=30_000,
        )
        try:
            yield context
        finally:
            context.close()


def browser_page(harness: Harness, html: str) -> None:
    """The page the browser ended on becomes a sink of INV-2, like every answer the harness received."""
    body = html.encode()
    harness.pages.append(RawReply(body, 200, "OK", {}, body))


def test_k1_a_real_browser_completes_the_sign_in_and_loads_nothing_from_elsewhere(harness: Harness) -> None:
    harness.issuer.routes["/oauth/authorize"] = redirect_with(harness.canaries["code"])
    run = harness.login()
    assert run.auth_url is not None and run.port is not None
    requested: list[str] = []
    with chromium() as context:
        context.on("request", lambda request: requested.append(request.url))
        page = context.new_page()
        response = page.goto(run.auth_url, wait_until="load")
        assert response is not None and response.status == 200
        assert page.url == f"http://localhost:{run.port}/success"
        run.end_attempt()
        assert "Signed in to Codex" in page.inner_text("body")
        browser_page(harness, page.content())
    harness.finish(run, Expect(rc=0, success=True))
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in requested}
    assert origins <= {harness.issuer.url, f"http://localhost:{run.port}"}, requested
    paths = [urlsplit(url).path for url in requested if urlsplit(url).port == run.port]
    assert paths[:2] == ["/auth/callback", "/success"] and set(paths) <= {"/auth/callback", "/success", "/favicon.ico"}
    assert len(harness.issuer.token_requests()) == 1
    assert "success page served" in "".join(read_log(harness.codex_home / "log").values())


# Chromium's own defence (Private/Local Network Access: an insecure page may not reach loopback) would stop the
# rebound page first; other browsers (and older Chromium) have none, so the Host check must hold by itself.
WITHOUT_LOCAL_NETWORK_CHECKS = (
    "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
    "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"
)

REBOUND_PAGE = """<!doctype html><title>attacker</title><script>
async function probe(url, init) {
  try {
    const r = await fetch(url, init);
    return {url, status: r.status, text: await r.text()};
  } catch (e) {
    return {url, error: String(e)};
  }
}
window.results = (async () => [
  await probe("/cancel"),
  await probe("/success"),
  await probe("/auth/callback?code=x&state=y"),
  await probe("http://localhost:PORT/cancel", {mode: "no-cors"}),
  await probe("http://127.0.0.1:PORT/success", {mode: "no-cors"}),
])();
</script>"""


def test_k2_a_rebound_page_can_neither_cancel_nor_complete_the_sign_in(harness: Harness) -> None:
    run = harness.login()
    assert run.port is not None
    port = run.port
    origin = f"http://{ATTACKER}:{port}"
    seen: dict[str, int] = {}
    with chromium(f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1", WITHOUT_LOCAL_NETWORK_CHECKS) as context:

        def record(response: Any) -> None:
            if urlsplit(response.url).port == port:
                seen[response.url] = response.status  # an opaque answer has no body to read

        context.on("response", record)
        # The first DNS answer: the attacker's own server served this page for attacker.test:PORT.
        context.route(f"{origin}/", lambda route: route.fulfill(
            status=200, content_type="text/html", body=REBOUND_PAGE.replace("PORT", str(port))))
        page = context.new_page()
        page.goto(f"{origin}/", wait_until="load")
        results = page.evaluate("window.results")
    by_url = {result["url"]: result for result in results}
    # Same-origin after the rebinding: the page can read the answers, and they are the Host check's refusal.
    for path in ("/cancel", "/success", "/auth/callback?code=x&state=y"):
        result = by_url[path]
        assert (result.get("status"), result.get("text")) == (400, "Bad Request: unexpected Host header"), results
    # To the loopback names the Host check accepts, from another site (no-cors: opaque to the page): the
    # browser's Sec-Fetch-* headers are refused by the cross-site check (B9).
    assert seen[f"http://localhost:{port}/cancel"] == 403, seen
    assert seen[f"http://127.0.0.1:{port}/success"] == 403, seen
    harness.still_waiting(run)
    assert harness.issuer.token_requests() == []
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    log = "".join(read_log(harness.codex_home / "log").values())
    assert log.count("reason=unexpected_host") == 3 and "login cancelled" not in log
    assert json.loads(harness.auth_path.read_text())["tokens"]["refresh_token"] == harness.canaries["refresh_token"]
