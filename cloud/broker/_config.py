"""The dynamic-security plugin's JSON file as ``mosquitto_ctrl dynsec init`` writes it.

Mosquitto 2.0 keeps clients, roles and the default access in this one file, loads it at start
and rewrites it after every change made through ``$CONTROL/dynamic-security/v1``. A client's
password is PBKDF2-HMAC-SHA512 over a 12-byte random salt, both base64 in the file with the
iteration count (101, the broker's own choice for every password it sets; the passwords are
long random secrets, so the count matters little).

The difference from ``mosquitto_ctrl``'s file: its admin role may only administer the plugin;
ours is the cloud's role (``cloud_grants``: everything under the prefix too), and the default
access denies delivery as well (``publishClientReceive``), so a client reads only what a
grant names.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from vendgate.cloud.broker._acl import CLOUD_ROLE, cloud_grants

ITERATIONS = 101
SALT_BYTES = 12
_USERNAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_username(username: str) -> str:
    """A broker login that is also its client id (``use_username_as_clientid``)."""
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"username must match [A-Za-z0-9_-]{{1,64}}, got {username!r}")
    return username


def validate_password(password: str) -> str:
    if not password:
        raise ValueError("password must not be empty")
    if "\n" in password or "\r" in password:
        raise ValueError("password must be one line")
    return password


def hashed_password(
    password: str, salt: bytes | None = None, iterations: int = ITERATIONS
) -> dict[str, Any]:
    """The ``password``, ``salt`` and ``iterations`` fields of a client in the file."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def cloud_role(prefix: str) -> dict[str, Any]:
    return {
        "rolename": CLOUD_ROLE,
        "textname": "vendgate cloud replicas and admin logins",
        "acls": [grant.as_dynsec() for grant in cloud_grants(prefix)],
    }


def initial_config(admin_user: str, password: str, prefix: str) -> dict[str, Any]:
    """The first file: one client, ``admin_user``, with the cloud's role; nothing else."""
    client = {
        "username": validate_username(admin_user),
        "textname": "vendgate cloud (made by vendgate broker init-dynsec)",
        **hashed_password(validate_password(password)),
        "roles": [{"rolename": CLOUD_ROLE}],
    }
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [client],
        "groups": [],
        "roles": [cloud_role(prefix)],
    }


def write_initial_config(path: Path, admin_user: str, password: str, prefix: str) -> None:
    """Write a new file readable by its owner only; an existing file is never overwritten
    (after the first start it holds every account the broker knows)."""
    text = json.dumps(initial_config(admin_user, password, prefix), indent=2) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
