"""Configuration (flags over VENDGATE_* over defaults), log lines and reconnect delays: pure."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vendgate.edge import OPTIONS, ConfigError, EdgeConfig, MqttUrl, format_line
from vendgate.protocol import reconnect_delay

REQUIRED = {"machine_id": "m1", "serial": "/dev/ttyUSB0"}


def load(flags: dict[str, str] | None = None, env: dict[str, str] | None = None) -> EdgeConfig:
    return EdgeConfig.load({**REQUIRED, **(flags or {})}, env or {})


# -- the MQTT URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", MqttUrl("broker", 1883, tls=False)),
        ("mqtts://broker", MqttUrl("broker", 8883, tls=True)),
        ("mqtt://127.0.0.1:1884", MqttUrl("127.0.0.1", 1884, tls=False)),
        ("mqtts://m1:s%40cret@b.example:9883", MqttUrl("b.example", 9883, True, "m1", "s@cret")),
        ("mqtt://m1@broker/", MqttUrl("broker", 1883, False, "m1")),
    ],
)
def test_mqtt_urls_are_taken_apart(url: str, expected: MqttUrl) -> None:
    parsed = MqttUrl.parse(url)

    assert parsed == expected
    assert parsed.password == expected.password


@pytest.mark.parametrize(
    "url", ["http://broker", "broker:1883", "mqtt://", "mqtt://b/topic", "mqtt://b:99999"]
)
def test_bad_mqtt_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        MqttUrl.parse(url)


def test_the_password_never_shows(tmp_path: Path) -> None:
    config = load({"mqtt_url": "mqtts://m1:hunter2@broker", "data_dir": str(tmp_path)})

    assert config.mqtt.password == "hunter2"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.describe())
    assert config.mqtt.redacted() == "mqtts://m1@broker:8883"


# -- where values come from -----------------------------------------------------------------


def test_flags_win_over_the_environment_which_wins_over_defaults() -> None:
    env = {"VENDGATE_CURRENCY": "SEK", "VENDGATE_RESEND_INTERVAL_S": "5", "VENDGATE_SERIAL": "x"}

    config = load({"currency": "EUR"}, env)

    assert config.currency == "EUR"  # flag
    assert config.resend_interval_s == 5.0  # environment
    assert config.serial == "/dev/ttyUSB0"  # flag over environment
    assert config.telemetry_interval_s == 60.0  # default
    assert config.mqtt_prefix == "vend/v1"


def test_everything_can_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "VENDGATE_MACHINE_ID": "m7",
        "VENDGATE_SERIAL": "socket://127.0.0.1:5000",
        "VENDGATE_MQTT_URL": "mqtt://m7:in-url@broker",
        "VENDGATE_MQTT_PASSWORD": "from-env",
        "VENDGATE_DATA_DIR": str(tmp_path),
    }

    config = EdgeConfig.load({}, env)

    assert (config.machine_id, config.serial, config.data_dir) == (
        "m7",
        env["VENDGATE_SERIAL"],
        tmp_path,
    )
    assert (config.mqtt.username, config.mqtt.password) == ("m7", "from-env")
    assert config.outbox_path == tmp_path / "edge.sqlite3"


def test_the_username_defaults_to_the_machine_id() -> None:
    assert load({"mqtt_url": "mqtt://broker"}).mqtt.username == "m1"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"machine_id": ""}, "machine id"),
        ({"machine_id": "m/1"}, "machine id"),
        ({"mqtt_url": "mqtt://m2:pw@broker"}, "must be the machine id"),
        ({"currency": "kroner"}, "currency"),
        ({"mqtt_prefix": "vend/+"}, "mqtt_prefix"),
        ({"resend_interval_s": "soon"}, "resend_interval_s"),
        ({"resend_interval_s": "0"}, "must be positive"),
        ({"reconnect_min_s": "10", "reconnect_max_s": "1"}, "reconnect_max_s"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    flags: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(flags)


def test_a_missing_required_setting_names_flag_and_variable() -> None:
    with pytest.raises(ConfigError, match="--serial or set VENDGATE_SERIAL"):
        EdgeConfig.load({"machine_id": "m1"}, {})


def test_every_option_is_a_config_field() -> None:
    fields = set(EdgeConfig.__dataclass_fields__) | {"mqtt_url", "mqtt_password", "config"}

    assert {option.name for option in OPTIONS} <= fields


# -- log lines ------------------------------------------------------------------------------


def test_log_lines_are_key_value_with_machine_and_vend_first() -> None:
    line = format_line(
        "vend.dispensed",
        {"price": "20.00 NOK", "vend_id": "v1", "success": True, "machine_id": "m1", "x": None},
    )

    assert (
        line == 'event=vend.dispensed machine_id=m1 vend_id=v1 price="20.00 NOK" success=true x=-'
    )


def test_log_values_with_quotes_stay_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    line = format_line("command.malformed", {"error": 'bad "v"\nfield'})

    assert "\n" not in line
    assert line.endswith('error="bad \\"v\\"\\nfield"')
    assert logging.getLogger("vendgate.edge").name == "vendgate.edge"


# -- reconnect delays -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 0.5), (1, 1.0), (3, 4.0), (7, 60.0), (500, 60.0)]
)
def test_reconnect_delay_doubles_up_to_the_cap_with_jitter(attempt: int, ceiling: float) -> None:
    def delay(rng: float) -> float:
        return reconnect_delay(attempt, base=0.5, cap=60.0, rng=lambda: rng)

    assert delay(0.0) == pytest.approx(ceiling / 2)
    assert delay(0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_reconnect_delays_spread_out() -> None:
    delays = {round(reconnect_delay(4, base=1.0, cap=60.0), 3) for _ in range(50)}

    assert len(delays) > 10
    assert all(8.0 <= d <= 16.0 for d in delays)


def test_the_docs_list_every_setting() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "edge-agent.md").read_text()

    missing = [o.env for o in OPTIONS if f"`{o.flag}` | `{o.env}`" not in docs]
    assert missing == []
