"""Machines' broker logins that follow the cloud: add, rotate, revoke, remove (docs/broker.md).

- ``BrokerAccounts``: the protocol the cloud's operator side uses; ``DynsecAccounts`` is it on
  Mosquitto's dynamic-security plugin (``async with DynsecAccounts(...) as accounts``).
- ``machine_grants``/``cloud_grants`` and ``permits``: who may do what, the one definition
  that Mosquitto's roles and the embedded amqtt broker's topic check both use.
- ``accounts_for(admin_url, prefix)``: what a replica runs with: ``DynsecOnDemand`` (one short
  admin connection per change) or ``DatabaseLogins`` (the broker reads the database itself).
- ``initial_config``/``write_initial_config``: the plugin's first JSON file
  (``vendgate broker init-dynsec``), with the cloud's login and role.
"""

from vendgate.cloud.broker._accounts import BrokerAccountError, BrokerAccounts, UnknownMachine
from vendgate.cloud.broker._acl import (
    CLOUD_ROLE,
    CONTROL_TOPIC,
    RESPONSE_TOPIC,
    Access,
    Grant,
    cloud_grants,
    machine_grants,
    machine_role,
    permits,
)
from vendgate.cloud.broker._config import (
    hashed_password,
    initial_config,
    validate_password,
    validate_username,
    write_initial_config,
)
from vendgate.cloud.broker._dynsec import DynsecAccounts
from vendgate.cloud.broker._on_demand import DatabaseLogins, DynsecOnDemand, accounts_for

__all__ = [
    "CLOUD_ROLE",
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "Access",
    "BrokerAccountError",
    "BrokerAccounts",
    "DatabaseLogins",
    "DynsecAccounts",
    "DynsecOnDemand",
    "Grant",
    "UnknownMachine",
    "accounts_for",
    "cloud_grants",
    "hashed_password",
    "initial_config",
    "machine_grants",
    "machine_role",
    "permits",
    "validate_password",
    "validate_username",
    "write_initial_config",
]
