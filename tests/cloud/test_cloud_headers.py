"""Response headers of the cloud: one charset, ``Allow`` on 405, the security headers everywhere.

Every kind of response the app sends is asked for over HTTP (in process): the customer's pages
and their error pages, the status JSON, problem+json errors, the redirect, the webhook's
refusal, 405 and 429 answers. A second part opens the pages in headless Chromium to show the
Content-Security-Policy is enforced there and blocks nothing the pages need.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from flow_support import Cloud, cloud_settings, running_cloud, scan, seed_machine, sqlite_url
from flow_support import vends_of as vends_at
from support.browser import CHROMIUM, PHONE, Browser, Page, chromium
from test_status_page_browser import bound_socket, served_over_http, url_of

from vendgate.cloud.settings import RateLimitSettings

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}
HTML = "text/html; charset=utf-8"
PROBLEM = "application/problem+json"


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    # Two status requests per token before 429, so the 429 answers are one request away.
    limits = RateLimitSettings(status_burst=2, status_per_minute=1)
    async with running_cloud(cloud_settings(sqlite_url(tmp_path), rate_limits=limits)) as running:
        await seed_machine(running.parts, "m1", online=True)
        await seed_machine(running.parts, "m2")  # never heard from: offline
        yield running


async def status_token(cloud: Cloud) -> str:
    assert (await scan(cloud, "m1")).status_code == 302
    (vend,) = await vends_at(cloud.parts, "m1")
    return vend.status_token


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as directive -> its sources."""
    header = response.headers.get("content-security-policy", "")
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    csp = policy(response)
    assert csp.get("default-src") == ["'none'"], csp
    assert csp.get("frame-ancestors") == ["'none'"], csp
    assert csp.get("base-uri") == ["'none'"], csp
    assert csp.get("form-action") == ["'self'"], csp
    assert not any("'unsafe-inline'" in s or "'unsafe-eval'" in s for s in csp.values()), csp
    assert response.headers.get("content-type", "").count("charset") <= 1


async def test_every_kind_of_response_carries_the_security_headers(cloud: Cloud) -> None:
    token = await status_token(cloud)
    responses = [
        await cloud.http.get(f"/s/{token}"),  # the status page
        await cloud.http.get(f"/s/{token}/state"),  # its JSON
        await cloud.http.get(f"/s/{token}/state"),  # 429 problem+json
        await cloud.http.get(f"/s/{token}"),  # 429 page
        await cloud.http.get("/m/m1"),  # 409 busy page
        await cloud.http.get("/m/m2"),  # 409 offline page
        await cloud.http.get("/m/nope"),  # 404 page
        await cloud.http.get("/s/nope/state"),  # 404 problem+json
        await cloud.http.get("/no/such/route"),  # 404 from the router
        await cloud.http.post("/m/m1"),  # 405 page
        await cloud.http.post("/healthz"),  # 405 problem+json
        await cloud.http.post(cloud.parts.settings.webhooks.path, content=b"{}"),  # 401
        await cloud.http.get("/healthz"),
    ]
    assert [r.status_code for r in responses] == [
        200, 200, 429, 429, 409, 409, 404, 404, 404, 405, 405, 401, 200,
    ]  # fmt: skip
    for response in responses:
        assert_secured(response)


async def test_the_scan_redirect_carries_the_security_headers(cloud: Cloud) -> None:
    response = await scan(cloud, "m1")
    assert response.status_code == 302
    assert_secured(response)


async def test_html_is_sent_with_exactly_one_charset(cloud: Cloud) -> None:
    token = await status_token(cloud)
    for path in (f"/s/{token}", "/m/nope", "/m/m2", "/s/nope"):
        response = await cloud.http.get(path)
        assert response.headers["content-type"] == HTML, path


def allowed(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers.get("allow", "").split(",") if method}


async def test_a_405_names_the_allowed_methods_on_pages_and_problems(cloud: Cloud) -> None:
    # Litestar answers OPTIONS on every route itself, so it is allowed too.
    page = await cloud.http.post("/m/m1")
    assert (page.status_code, page.headers["content-type"]) == (405, HTML)
    assert allowed(page) == {"GET", "OPTIONS"}
    problem = await cloud.http.post("/healthz")
    assert (problem.status_code, problem.headers["content-type"]) == (405, PROBLEM)
    assert allowed(problem) == {"GET", "OPTIONS"}
    webhook = await cloud.http.get(cloud.parts.settings.webhooks.path)
    assert (webhook.status_code, allowed(webhook)) == (405, {"POST", "OPTIONS"})


async def test_a_429_keeps_its_retry_after(cloud: Cloud) -> None:
    token = await status_token(cloud)
    for _ in range(2):
        assert (await cloud.http.get(f"/s/{token}/state")).status_code == 200
    refused = await cloud.http.get(f"/s/{token}/state")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


def inline_digests(html: str, tag: str) -> list[str]:
    bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    assert bodies, f"no <{tag}> in the page"
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in bodies
    ]


async def test_the_policy_allows_exactly_the_pages_own_script_and_style(cloud: Cloud) -> None:
    token = await status_token(cloud)
    page = await cloud.http.get(f"/s/{token}")
    csp = policy(page)
    assert set(inline_digests(page.text, "script")) <= set(csp["script-src"])
    assert set(inline_digests(page.text, "style")) <= set(csp["style-src"])
    assert csp["connect-src"] == ["'self'"]  # the page polls its JSON on the same origin
    error_page = await cloud.http.get("/m/nope")
    assert set(inline_digests(error_page.text, "style")) <= set(policy(error_page)["style-src"])


# -- in a real browser: the policy is enforced and blocks nothing the pages need -----------------

# Installed before any page script runs, so a violation during load is recorded too.
RECORD_VIOLATIONS = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.cspViolations.push(e.effectiveDirective));"""
STYLED = "getComputedStyle(document.body).marginTop === '0px'"  # the page's CSS applied
INJECT = """(() => {
  const script = document.createElement('script');
  script.textContent = 'window.injected = true';
  document.head.appendChild(script);
  return window.injected === true;
})()"""
STATE = "document.querySelector('#status').dataset.state"
LIMIT_S = 20.0


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no `chromium` on PATH (apt install chromium)")
async def test_chromium_enforces_the_policy_and_the_pages_still_work(tmp_path: Path) -> None:
    listener = bound_socket()
    async with (
        running_cloud(cloud_settings(sqlite_url(tmp_path))) as cloud,
        served_over_http(cloud, listener),
        chromium() as browser,
    ):
        await seed_machine(cloud.parts, "m1", online=True)
        token = await status_token(cloud)
        base = url_of(listener)

        status = await watched_page(browser, f"{base}/s/{token}")
        assert await status.evaluate(STATE) == "waiting"
        (vend,) = await vends_at(cloud.parts, "m1")
        cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
        await status.wait_until(f"{STATE} === 'choose'", LIMIT_S)  # its script polled its JSON
        status_report = await load_report(status)

        error = await watched_page(browser, f"{base}/m/nope")
        error_report = await load_report(error)

    for report in (status_report, error_report):
        assert report["styled"], report
        assert report["injected_ran"] is False, report
        assert report["violations"] == ["script-src-elem"], report  # only the injected script


async def watched_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page(PHONE)
    await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    await page.navigate(url)
    return page


async def load_report(page: Page) -> dict[str, object]:
    """Whether the page's CSS applied, and what the policy blocked (an injected script too)."""
    styled = await page.evaluate(STYLED)
    injected_ran = await page.evaluate(INJECT)
    if not injected_ran:
        await page.wait_until("window.cspViolations.length > 0", LIMIT_S)
    violations = await page.evaluate("window.cspViolations")
    return {"styled": styled, "injected_ran": injected_ran, "violations": violations}
