"""A faithful in-memory Vipps MobilePay simulator (ePayment, Webhooks, QR, receipts).

In process::

    app = create_vipps_sim(SimSettings(), clock=ManualClock())  # any vendgate.protocol.Clock
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vipps")
    sim: VippsSimulator = app.state.sim      # play the customer, set faults, await webhooks

Standalone: ``vendgate vipps-sim --port 8090`` (see docs/vipps-simulator.md).
"""

from . import _ledger as ledger  # the pure payment rules, as functions over LedgerPayment
from ._app import create_vipps_sim
from ._faults import FaultSettings
from ._ledger import LedgerEvent, LedgerPayment, RuleViolation
from ._paths import canonical_path, route_templates
from ._settings import DEFAULT_WEBHOOK_RETRY_DELAYS, SimSettings
from ._signing import vipps_signature_headers
from ._simulator import VippsSimulator
from ._webhook_delivery import DeliveryRecord, Registration

__all__ = [
    "DEFAULT_WEBHOOK_RETRY_DELAYS",
    "DeliveryRecord",
    "FaultSettings",
    "LedgerEvent",
    "LedgerPayment",
    "Registration",
    "RuleViolation",
    "SimSettings",
    "VippsSimulator",
    "canonical_path",
    "create_vipps_sim",
    "ledger",
    "route_templates",
    "vipps_signature_headers",
]
