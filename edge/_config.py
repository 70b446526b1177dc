"""The agent's configuration: command-line flags over ``VENDGATE_*`` variables over defaults.

``OPTIONS`` is the one table of settings: the CLI builds its flags from it, ``load_config``
reads it, docs/edge-agent.md lists it. The MQTT URL carries the broker and, optionally, the
credentials (``mqtts://`` means TLS); the password is better given as ``VENDGATE_MQTT_PASSWORD``
so it shows in no process list. The username, when given, must be the machine id: the broker's
ACL confines each machine to its own topics by username.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from vendgate.protocol import MoneyError, currency_exponent
from vendgate.protocol.mqtt import ContractError, TopicTree, validate_machine_id

__all__ = [
    "OPTIONS",
    "ConfigError",
    "EdgeConfig",
    "MqttUrl",
    "Option",
    "add_arguments",
    "read_config_file",
]

ENV_PREFIX = "VENDGATE_"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class ConfigError(ValueError):
    """The configuration is incomplete or wrong; the message says which setting and why."""


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """``mqtt://user:password@host:port`` or ``mqtts://...`` taken apart."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> MqttUrl:
        parts = urlsplit(text)
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError(f"mqtt_url must start with mqtt:// or mqtts://, got {text!r}")
        if not parts.hostname:
            raise ConfigError(f"mqtt_url names no host: {text!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError("mqtt_url must be scheme://[user[:password]@]host[:port] only")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as error:
            raise ConfigError(f"mqtt_url has a bad port: {error}") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def redacted(self) -> str:
        """The URL for logs: never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: ``--flag-name`` on the command line, ``VENDGATE_NAME`` in the environment."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    default: str | None = None  # None: required

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("config", "a file of VENDGATE_*=value lines, as `vendgate edge claim` writes; "
           "flags and the environment win over it", default=""),
    Option("machine_id", "machine id = MQTT username = client id, e.g. m1"),
    Option("mqtt_url", "broker URL, mqtt://[user[:password]@]host[:port] or mqtts://...",
           default="mqtt://127.0.0.1:1883"),
    Option("mqtt_password", "MQTT password (overrides one in the URL; prefer the environment)",
           default=""),
    Option("mqtt_ca_file", "CA bundle for mqtts:// (default: the system's CAs)", default=""),
    Option("mqtt_prefix", "topic prefix", default="vend/v1"),
    Option("serial", "the vend board link: a device path or any pyserial URL"),
    Option("data_dir", "folder for the outbox and state (SQLite)",
           default="/var/lib/vendgate-edge"),
    Option("currency", "ISO 4217 currency of the machine's prices", default="NOK"),
    Option("mdb_scale_factor", "MDB scale factor the reader announces", int, "1"),
    Option("mdb_decimal_places", "MDB decimal places the reader announces", int, "2"),
    Option("selection_timeout_s", "end a session with no selection after this long",
           float, "60"),
    Option("link_lost_after_s", "the board counts as gone after this long silent", float, "2"),
    Option("begin_timeout_s", "give up a BEGIN SESSION the board never takes", float, "15"),
    Option("resend_interval_s", "re-send unacknowledged events this often", float, "15"),
    Option("telemetry_interval_s", "heartbeat period", float, "60"),
    Option("keepalive_s", "MQTT keepalive", int, "30"),
    Option("reconnect_min_s", "first reconnect delay (doubles, with jitter)", float, "0.5"),
    Option("reconnect_max_s", "longest reconnect delay", float, "60"),
    Option("vend_retention_days", "forget finished vends after this many days", float, "7"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    machine_id: str
    mqtt: MqttUrl
    serial: str
    data_dir: Path
    currency: str = "NOK"
    mqtt_prefix: str = "vend/v1"
    mqtt_ca_file: str | None = None
    mdb_scale_factor: int = 1
    mdb_decimal_places: int = 2
    selection_timeout_s: float = 60.0
    link_lost_after_s: float = 2.0
    begin_timeout_s: float = 15.0
    resend_interval_s: float = 15.0
    telemetry_interval_s: float = 60.0
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    vend_retention_days: float = 7.0

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    @property
    def topics(self) -> TopicTree:
        return TopicTree(self.mqtt_prefix)

    @classmethod
    def load(cls, flags: Mapping[str, object], environ: Mapping[str, str]) -> EdgeConfig:
        """Flags (``None`` = not given) win over the environment, which wins over the config
        file (``--config``), which wins over defaults."""
        environ = {**_config_file_values(flags, environ), **environ}
        raw = {option.name: _raw_value(option, flags, environ) for option in OPTIONS}
        values = {option.name: _parsed(option, raw[option.name]) for option in OPTIONS}
        values.pop("config")
        return _build(values)

    def describe(self) -> dict[str, object]:
        """Everything worth a startup log line, without secrets."""
        return {
            "machine_id": self.machine_id,
            "mqtt": self.mqtt.redacted(),
            "prefix": self.mqtt_prefix,
            "serial": self.serial,
            "data_dir": str(self.data_dir),
            "currency": self.currency,
        }


def _config_file_values(flags: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, str]:
    path = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    if not path:
        return {}
    try:
        return read_config_file(Path(str(path)))
    except FileNotFoundError:
        raise ConfigError(f"config: no file {path}") from None
    except OSError as error:
        raise ConfigError(f"config: cannot read {path}: {error.strerror}") from None


def read_config_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (systemd's EnvironmentFile format, without its escapes): blank lines
    and ``#`` comments are skipped, one pair of surrounding quotes is taken off; every key
    must be a known ``VENDGATE_*`` setting."""
    known = {option.env for option in OPTIONS if option.name != "config"}
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, equals, value = text.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or key not in known:
            raise ConfigError(f"{path}:{number}: not a known VENDGATE_* setting: {key!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _raw_value(option: Option, flags: Mapping[str, object], environ: Mapping[str, str]) -> str:
    flag = flags.get(option.name)
    if flag is not None:
        return str(flag)
    if option.env in environ:
        return environ[option.env]
    if option.default is None:
        raise ConfigError(f"{option.name} is required: pass {option.flag} or set {option.env}")
    return option.default


def _parsed(option: Option, text: str) -> Any:
    try:
        return option.parse(text)
    except ValueError:
        raise ConfigError(f"{option.name}: cannot read {text!r} ({option.help})") from None


def _build(values: dict[str, Any]) -> EdgeConfig:
    machine_id = _checked_machine_id(values.pop("machine_id"))
    mqtt = MqttUrl.parse(values.pop("mqtt_url"))
    password = values.pop("mqtt_password") or mqtt.password
    if mqtt.username not in (None, machine_id):
        raise ConfigError(
            f"the MQTT username ({mqtt.username}) must be the machine id ({machine_id})"
        )
    mqtt = MqttUrl(mqtt.host, mqtt.port, mqtt.tls, machine_id, password)
    _check_currency(values["currency"])
    _check_prefix(values["mqtt_prefix"])
    _check_positive(values)
    return EdgeConfig(
        machine_id=machine_id,
        mqtt=mqtt,
        serial=values.pop("serial"),
        data_dir=Path(values.pop("data_dir")),
        mqtt_ca_file=values.pop("mqtt_ca_file") or None,
        **values,
    )


def _checked_machine_id(text: str) -> str:
    try:
        return validate_machine_id(text)
    except ContractError as error:
        raise ConfigError(str(error)) from None


def _check_currency(currency: str) -> None:
    try:
        currency_exponent(currency)
    except MoneyError as error:
        raise ConfigError(f"currency: {error}") from None


def _check_prefix(prefix: str) -> None:
    try:
        TopicTree(prefix)
    except ContractError as error:
        raise ConfigError(f"mqtt_prefix: {error}") from None


def _check_positive(values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if name.endswith(("_s", "_days")) and not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")
    if values["reconnect_max_s"] < values["reconnect_min_s"]:
        raise ConfigError("reconnect_max_s must not be less than reconnect_min_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option; the help names the variable and the default."""
    for option in OPTIONS:
        default = "required" if option.default is None else f"default {option.default or 'none'}"
        parser.add_argument(
            option.flag,
            dest=option.name,
            default=None,
            metavar="VALUE",
            help=f"{option.help} (env {option.env}; {default})",
        )
