"""A small runner for a Postman collection (format v2.1): sends its requests as Postman would.

It reads the collection JSON, fills ``{{variables}}`` from the environment it is given and those
the collection's scripts set, applies the collection's or the request's auth, and sends each
request over real HTTP. It runs no JavaScript: each script block of the collection must be one
it knows (``SCRIPTS``, keyed by the block's exact text) and it does in Python what that block
does. An unknown script block or an unset variable fails loudly, so a changed collection is
noticed instead of silently half-run.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

VARIABLE = re.compile(r"\{\{([^{}]+)\}\}")
# Postman adds these to every request the collection does not give them to.
POSTMAN_DEFAULT_HEADERS = {"Accept": "*/*", "User-Agent": "PostmanRuntime/7.36.0"}


@dataclass
class PostmanRunner:
    collection: dict[str, Any]
    environment: dict[str, str]
    http: httpx.Client
    _last_reference_ms: int = 0
    sent: list[tuple[str, httpx.Response]] = field(default_factory=list)
    # A script that fails on the answer (no such field) is reported, as Postman does, and the
    # run goes on; the test decides what that means.
    script_errors: list[str] = field(default_factory=list)

    def items(self) -> Iterator[dict[str, Any]]:
        """Every request of the collection, folders flattened, in the collection's order."""

        def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for item in items:
                if "item" in item:
                    yield from walk(item["item"])
                else:
                    yield item

        yield from walk(self.collection["item"])

    def item(self, name: str) -> dict[str, Any]:
        found = [item for item in self.items() if item["name"] == name]
        assert len(found) == 1, f"the collection has {len(found)} requests named {name!r}"
        return found[0]

    def variable(self, name: str) -> str:
        if name in self.environment:
            return self.environment[name]
        for variable in self.collection.get("variable", []):
            if variable["key"] == name:
                return str(variable["value"])
        raise AssertionError(f"{{{{{name}}}}} is used but set neither by a script nor by us")

    def fill(self, text: str) -> str:
        return VARIABLE.sub(lambda match: self.variable(match.group(1)), text)

    def run(self, name: str) -> httpx.Response:
        """Send the request ``name`` with its pre-request and test scripts."""
        item = self.item(name)
        self._scripts(item, "prerequest", None)
        request = item["request"]
        headers = {
            h["key"]: self.fill(h["value"])
            for h in request.get("header", [])
            if not h.get("disabled")
        }
        headers.update(self._auth(request.get("auth", self.collection.get("auth"))))
        for key, value in POSTMAN_DEFAULT_HEADERS.items():
            if key.lower() not in {h.lower() for h in headers}:
                headers[key] = value
        body = request.get("body", {})
        assert body.get("mode", "raw") == "raw", f"{name}: only raw bodies are supported"
        content = self.fill(body.get("raw", "")).encode()
        response = self.http.request(
            request["method"], self.fill(request["url"]["raw"]), headers=headers, content=content
        )
        self.sent.append((name, response))
        self._scripts(item, "test", response)
        return response

    def _auth(self, auth: dict[str, Any] | None) -> dict[str, str]:
        if auth is None or auth["type"] == "noauth":
            return {}
        assert auth["type"] == "apikey", f"auth type {auth['type']} is not supported"
        options = {entry["key"]: entry["value"] for entry in auth["apikey"]}
        assert options.get("in", "header") == "header", "only header api keys are supported"
        return {self.fill(options["key"]): self.fill(options["value"])}

    def _scripts(self, item: dict[str, Any], listen: str, response: httpx.Response | None) -> None:
        for event in item.get("event", []):
            if event["listen"] != listen:
                continue
            lines = [line.strip() for line in event["script"]["exec"]]
            text = "\n".join(line for line in lines if line)
            if not text:
                continue
            action = SCRIPTS.get(text)
            assert action is not None, (
                f"{item['name']}: a script this runner does not know:\n{text}"
            )
            try:
                action(self, response)
            except (KeyError, ValueError, AttributeError) as error:
                self.script_errors.append(f"{item['name']} ({listen}): {error!r}")

    # -- what the collection's scripts do ----------------------------------------------------

    def new_idempotency_key_and_reference(self, _: httpx.Response | None) -> None:
        self.environment["idempotency_key"] = str(uuid.uuid4())
        # merchantSerialNumber + (new Date()).getTime(): string + milliseconds. Two requests in
        # one millisecond would collide here and not in Postman's slower loop: bump by one.
        now_ms = max(int(time.time() * 1000), self._last_reference_ms + 1)
        self._last_reference_ms = now_ms
        self.environment["reference"] = self.environment["merchantSerialNumber"] + str(now_ms)

    def keep_access_token(self, response: httpx.Response | None) -> None:
        assert response is not None
        self.environment["access_token"] = response.json()["access_token"]

    def keep_landing_page(self, response: httpx.Response | None) -> None:
        # `if (pm.response.code === 200)`: ePayment answers a create with 201, so the block
        # does nothing against the real API either (it reads eCom's `url`, too).
        assert response is not None
        if response.status_code == 200:
            url = response.json()["url"]
            self.environment["vippsLandingPageURL"] = url
            parts = url.split("=")[:3]  # JavaScript's split('=', 3): the first 3 pieces
            if len(parts) > 2:
                self.environment["payment_token"] = parts[2]

    def keep_profile_sub(self, response: httpx.Response | None) -> None:
        assert response is not None
        sub = (response.json().get("profile") or {}).get("sub")
        if sub is not None:
            self.environment["sub"] = sub


Script = Callable[[PostmanRunner, httpx.Response | None], None]

SCRIPTS: dict[str, Script] = {
    "var uuid = require('uuid')\n"
    'pm.environment.set("idempotency_key", uuid.v4())\n'
    "pm.environment.set('reference',pm.environment.get('merchantSerialNumber') + "
    "(new Date()).getTime());": PostmanRunner.new_idempotency_key_and_reference,
    'pm.environment.set("access_token", pm.response.json().access_token);': (
        PostmanRunner.keep_access_token
    ),
    "if(pm.response.code === 200) {\n"
    "var jsonData = pm.response.json();\n"
    "pm.environment.set('vippsLandingPageURL', jsonData.url);\n"
    "var str = jsonData.url\n"
    "var str2 = str.split('=', 3)[2]\n"
    "pm.environment.set('payment_token', str2);\n"
    "}": PostmanRunner.keep_landing_page,
    "var jsonData = JSON.parse(responseBody);\n"
    'postman.setEnvironmentVariable("sub", jsonData?.profile?.sub);': (
        PostmanRunner.keep_profile_sub
    ),
}
