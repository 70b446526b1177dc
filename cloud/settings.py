"""Cloud settings: one frozen dataclass per concern, read from ``VENDGATE_*`` once.

``CloudSettings.from_env()`` reads the environment; tests build the dataclasses directly (or
call ``from_env`` with a dict) and pass them to ``create_app``. Every time is in seconds.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vendgate.cloud.errors import InvalidSetting
from vendgate.cloud.vipps import VippsSettings
from vendgate.protocol.mqtt import DEFAULT_PREFIX

ENV = "VENDGATE_"
DEFAULT_DATA_DIR = ".vendgate"


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def default_client_id() -> str:
    """``vendgate-cloud-<hostname>``, the hostname reduced to characters every broker takes."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"
    return f"vendgate-cloud-{host}"[:64]


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'cloud.db'}"


@dataclass(frozen=True)
class DatabaseSettings:
    # SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db.
    url: str = sqlite_url(Path(DEFAULT_DATA_DIR))
    # Run Alembic migrations to head when the app starts (`vendgate cloud migrate` does it too).
    migrate_on_start: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def __repr__(self) -> str:
        # The URL may carry a password.
        return f"DatabaseSettings(dialect={self.url.split(':', 1)[0]!r})"


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    prefix: str = DEFAULT_PREFIX
    # `$share/cloud/...` subscriptions: on for Mosquitto (several replicas), off for amqtt,
    # which ignores them (it would then deliver nothing).
    shared_subscriptions: bool = False
    # Fixed per replica, so its persistent session (and the events queued in it while it
    # reconnects) is found again. Empty: the username (Mosquitto ties client id to username),
    # else `vendgate-cloud-<hostname>`. Two replicas must never share one.
    client_id: str = ""
    # Reconnects: the first after `reconnect_min`, doubling (with jitter) up to `reconnect_delay`.
    reconnect_min: float = 0.1
    reconnect_delay: float = 2.0

    def __post_init__(self) -> None:
        if not self.client_id:
            object.__setattr__(self, "client_id", self.username or default_client_id())

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> MqttSettings:
        """``mqtt://user:password@host:port`` (user and password optional)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"MQTT URL must start with mqtt://, got {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **overrides,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class TimingSettings:
    # A machine is offline when its last heartbeat (status, telemetry or event) is older.
    heartbeat_window: float = 120.0
    # A session whose machine has not ended it this long after authorization is settled
    # with what was reported so far (usually: nothing captured, everything released).
    settle_deadline: float = 300.0
    # The `authorized` command's lifetime, and how often it is re-sent until answered.
    authorized_ttl: float = 60.0
    authorized_resend: float = 3.0
    # Vipps' polling guideline: first look after 5 s, then every 2 s until a final state.
    poll_first: float = 5.0
    poll_interval: float = 2.0
    # The reconciler's pass interval, and how long a claimed session stays claimed.
    reconcile_interval: float = 1.0
    work_lease: float = 30.0
    # Back-off after a failed Vipps call in the background (same idempotency key next time);
    # it doubles with every failure of a session, up to 64 times this.
    retry_delay: float = 2.0
    # A payment the customer has not approved this long after the scan is cancelled and the
    # machine freed (Vipps would keep it open 10 minutes). Also VENDGATE_APPROVAL_TIMEOUT.
    approval_timeout: float = 90.0
    # After this many failed tries of one session's step an alert is raised (once).
    alert_after_failures: float = 5
    # A scan pings the machine and creates the payment only on its answer within this bound.
    # 0 turns the ping off: only for tests that run without MQTT, never in production.
    ping_timeout: float = 1.5
    # The scan's one attempt to create the payment: a phone never waits longer; if Vipps does
    # not answer in time, the scan says "try again" and the reconciler retries the create.
    scan_vipps_timeout: float = 3.0


@dataclass(frozen=True)
class WebhookSettings:
    # Path of the Vipps webhook endpoint under the public URL.
    path: str = "/vipps/webhooks"
    # A secret given by the operator (a registration made elsewhere); else the app registers
    # its URL with Vipps on start and keeps the secret in the database.
    secret: str | None = field(default=None, repr=False)
    register: bool = True
    max_age: float = 300.0


@dataclass(frozen=True)
class RateLimitSettings:
    # Scans (`GET /m/{id}`) per machine: a token bucket of `scan_burst` scans refilled at
    # `scan_per_minute`. A real purchase takes well over a minute; 0 burst turns it off.
    scan_burst: int = 5
    scan_per_minute: float = 10.0
    # Status page and its JSON (`/s/{token}...`) per token. The page polls once a second; this
    # allows ten times that (a fast client, the demo) and cuts a flood; 0 burst turns it off.
    status_burst: int = 60
    status_per_minute: float = 600.0
    # Buckets one replica keeps per limiter (least recently used dropped first).
    max_keys: int = 10_000


@dataclass(frozen=True)
class FleetSettings:
    # The broker URL a machine is told to use (by `vendgate edge claim` and on creation); empty:
    # the cloud's own broker host and port (VENDGATE_MQTT_URL) without its login.
    machine_mqtt_url: str = ""
    # Mosquitto's dynamic security, logged in as an admin login with the cloud's role that no
    # replica uses (docs/broker.md): mqtt://vendgate-admin:pw@host:port. Empty: the broker
    # does not follow the cloud (the embedded broker reads the logins from the database; the
    # static password file is edited by hand).
    broker_admin_url: str = field(default="", repr=False)
    # The highest price a planogram slot may have, in minor units (a typo must not reserve
    # 25 000 kr on a customer's card).
    max_price: int = 100_000
    # How long a claim code is valid.
    claim_minutes: float = 15.0


@dataclass(frozen=True)
class CloudSettings:
    # Base URL customers and Vipps reach us at: returnUrl, scan links, webhook URL.
    public_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    database: DatabaseSettings = DatabaseSettings()
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    vipps: VippsSettings = field(default_factory=VippsSettings)
    webhooks: WebhookSettings = WebhookSettings()
    timing: TimingSettings = TimingSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    fleet: FleetSettings = FleetSettings()
    payment_description: str = "Vending machine purchase"
    # How many due sessions one replica works at once (the reconciler's bound; each waits on
    # a Vipps call most of its time). Also VENDGATE_WORK_CONCURRENCY.
    work_concurrency: int = 16
    # Off only in tests that drive the MQTT side or the reconciler by hand.
    run_mqtt: bool = True
    run_reconciler: bool = True

    @property
    def webhook_url(self) -> str:
        return self.public_url.rstrip("/") + self.webhooks.path

    def status_url(self, token: str) -> str:
        return f"{self.public_url.rstrip('/')}/s/{token}"

    def scan_url(self, machine_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/m/{machine_id}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CloudSettings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get(f"{ENV}DATA_DIR", DEFAULT_DATA_DIR))
        return cls(
            public_url=env.get(f"{ENV}PUBLIC_URL", cls.public_url).rstrip("/"),
            data_dir=data_dir,
            database=DatabaseSettings(
                url=env.get(f"{ENV}DATABASE_URL", sqlite_url(data_dir)),
                migrate_on_start=_env_bool(env.get(f"{ENV}MIGRATE_ON_START", "1")),
            ),
            mqtt=_mqtt_from_env(env),
            vipps=VippsSettings.from_env(env),
            webhooks=WebhookSettings(
                secret=env.get(f"{ENV}VIPPS_WEBHOOK_SECRET") or None,
                register=_env_bool(env.get(f"{ENV}VIPPS_REGISTER_WEBHOOK", "1")),
            ),
            timing=_timing_from_env(env),
            rate_limits=_rate_limits_from_env(env),
            work_concurrency=max(1, _whole(env, f"{ENV}WORK_CONCURRENCY", cls.work_concurrency)),
            fleet=FleetSettings(
                machine_mqtt_url=env.get(f"{ENV}MACHINE_MQTT_URL", ""),
                broker_admin_url=env.get(f"{ENV}BROKER_ADMIN_URL", ""),
                max_price=_whole(env, f"{ENV}MAX_PRICE", FleetSettings.max_price),
                claim_minutes=_number(env, f"{ENV}CLAIM_MINUTES", FleetSettings.claim_minutes),
            ),
        )

    @property
    def machine_mqtt_url(self) -> str:
        """What a machine connects to: the fleet setting, else the cloud's broker (no login)."""
        if self.fleet.machine_mqtt_url:
            return self.fleet.machine_mqtt_url
        return f"mqtt://{self.mqtt.host}:{self.mqtt.port}"


def _mqtt_from_env(env: Mapping[str, str]) -> MqttSettings:
    url = env.get(f"{ENV}MQTT_URL", "mqtt://127.0.0.1:1883")
    overrides: dict[str, object] = {
        "prefix": env.get(f"{ENV}MQTT_PREFIX", DEFAULT_PREFIX),
        "shared_subscriptions": _env_bool(env.get(f"{ENV}MQTT_SHARED_SUBSCRIPTIONS", "0")),
    }
    if f"{ENV}MQTT_CLIENT_ID" in env:
        overrides["client_id"] = env[f"{ENV}MQTT_CLIENT_ID"]
    return MqttSettings.from_url(url, **overrides)


# VENDGATE_<NAME>_S overrides TimingSettings.<name>, e.g. VENDGATE_SETTLE_DEADLINE_S=120.
def _timing_from_env(env: Mapping[str, str]) -> TimingSettings:
    defaults = TimingSettings()
    values = {
        name: _number(env, f"{ENV}{name.upper()}_S", getattr(defaults, name))
        for name in defaults.__dataclass_fields__
    }
    # The name operators are told about (docs/cloud.md); the _S form works too.
    values["approval_timeout"] = _number(env, f"{ENV}APPROVAL_TIMEOUT", values["approval_timeout"])
    return TimingSettings(**values)


def _number(env: Mapping[str, str], variable: str, default: float) -> float:
    """A non-negative finite number from ``variable``, or ``default`` when it is unset."""
    text = env.get(variable)
    if text is None:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidSetting(variable, text, "a non-negative number")
    return value


def _whole(env: Mapping[str, str], variable: str, default: int) -> int:
    value = _number(env, variable, default)
    if value != int(value):
        raise InvalidSetting(variable, env[variable], "a whole number")
    return int(value)


def _rate_limits_from_env(env: Mapping[str, str]) -> RateLimitSettings:
    defaults = RateLimitSettings()
    return RateLimitSettings(
        scan_burst=_whole(env, f"{ENV}SCAN_RATE_BURST", defaults.scan_burst),
        scan_per_minute=_number(env, f"{ENV}SCAN_RATE_PER_MINUTE", defaults.scan_per_minute),
        status_burst=_whole(env, f"{ENV}STATUS_RATE_BURST", defaults.status_burst),
        status_per_minute=_number(env, f"{ENV}STATUS_RATE_PER_MINUTE", defaults.status_per_minute),
        max_keys=_whole(env, f"{ENV}RATE_LIMIT_MAX_KEYS", defaults.max_keys),
    )
