"""``vendgate edge claim``: trade a technician's claim code for this machine's broker login.

The cloud answers ``POST /api/v1/claims`` once per code with the machine id, the broker URL,
its password and the topic prefix. They go into the agent's config file (``KEY=value`` lines,
the format systemd's ``EnvironmentFile=`` reads too), written whole or not at all and readable
by its owner only: it holds the password. Other lines already in the file (the serial port,
the data folder) are kept.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import httpx

from ._config import ConfigError, read_config_file

CLAIM_PATH = "/api/v1/claims"
TIMEOUT_S = 15.0


class ClaimError(RuntimeError):
    """The claim did not work; the message says why in one line."""


def claim(cloud_url: str, code: str, config_path: Path, *, http: httpx.Client | None = None) -> str:
    """Claim with ``code`` and write ``config_path``; returns the machine id."""
    login = _ask(cloud_url, code, http)
    values = {
        "VENDGATE_MACHINE_ID": login["username"],
        "VENDGATE_MQTT_URL": login["mqtt_url"],
        "VENDGATE_MQTT_PASSWORD": login["password"],
        "VENDGATE_MQTT_PREFIX": login["topic_prefix"],
    }
    write_config_file(config_path, values)
    return login["username"]


def _ask(cloud_url: str, code: str, http: httpx.Client | None) -> dict[str, str]:
    url = cloud_url.rstrip("/") + CLAIM_PATH
    client = http or httpx.Client(timeout=TIMEOUT_S)
    try:
        response = client.post(url, json={"code": code})
    except httpx.HTTPError as error:
        raise ClaimError(f"cannot reach the cloud at {cloud_url}: {error}") from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise ClaimError(
            f"the cloud refused the claim ({response.status_code}): {_detail(response)}"
        )
    try:
        body = response.json()
        return {key: str(body[key]) for key in ("username", "password", "mqtt_url", "topic_prefix")}
    except (ValueError, KeyError, TypeError):
        raise ClaimError(f"{url} did not answer like a vendgate cloud") from None


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def write_config_file(path: Path, values: Mapping[str, str]) -> None:
    """Set ``values`` in the file at ``path`` (keeping its other lines), atomically, mode 0600."""
    try:
        kept = {k: v for k, v in read_config_file(path).items() if k not in values}
    except FileNotFoundError:
        kept = {}
    except ConfigError as error:
        raise ClaimError(f"{error}; fix or remove it first") from None
    lines = ["# vendgate edge settings; written by `vendgate edge claim`. Holds a password."]
    lines += [f"{key}={value}" for key, value in {**kept, **values}.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file 0600 in the same folder, so the rename is atomic.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
