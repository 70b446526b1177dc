"""The two tiers a purchase-flow test runs on, for ``@pytest.mark.parametrize("tier", TIERS,
indirect=True)``: embedded (amqtt, SQLite) and production-shaped (the repo's Mosquitto with its
ACL and shared subscriptions, PostgreSQL). The ``tier`` fixture is in this folder's conftest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from flow_support import EdgeScript, FakeEdge, sqlite_url
from support.mosquitto import CLOUD_PASSWORD, CLOUD_USER, Mosquitto, machine_password

from vendgate.cloud.settings import MqttSettings

TIERS = [
    pytest.param("embedded", marks=pytest.mark.amqtt, id="amqtt-sqlite"),
    pytest.param(
        "production", marks=[pytest.mark.mosquitto, pytest.mark.postgres], id="mosquitto-postgres"
    ),
]


@dataclass
class Tier:
    database_url: str
    mqtt: MqttSettings
    broker_port: int
    machine_passwords: bool

    def edge(self, machine_id: str, script: EdgeScript) -> FakeEdge:
        password = machine_password(machine_id) if self.machine_passwords else None
        return FakeEdge("127.0.0.1", self.broker_port, machine_id, password, script)


def tier_for(request: pytest.FixtureRequest, tmp_path: Path) -> Tier:
    if request.param == "embedded":
        broker = request.getfixturevalue("amqtt_broker")
        mqtt = MqttSettings(host="127.0.0.1", port=broker.port, reconnect_delay=0.2)
        return Tier(sqlite_url(tmp_path), mqtt, broker.port, machine_passwords=False)
    mosquitto: Mosquitto = request.getfixturevalue("mosquitto")
    database_url = request.getfixturevalue("fresh_postgres")
    mqtt = MqttSettings(
        host="127.0.0.1",
        port=mosquitto.port,
        username=CLOUD_USER,
        password=CLOUD_PASSWORD,
        shared_subscriptions=True,
        reconnect_delay=0.2,
    )
    return Tier(database_url, mqtt, mosquitto.port, machine_passwords=True)
