"""Order Management receipts: immutable once posted, one per (payment type, order id)."""

from __future__ import annotations

import re
import uuid

from vendgate.cloud.vipps import Receipt

from ._payments import decode_body
from ._problems import SimProblem, bad_request

ORDER_ID = re.compile(r"^[0-9A-Za-z\-_\.]+$")
PAYMENT_TYPES = {"ECOM", "RECURRING"}


class ReceiptStore:
    def __init__(self) -> None:
        self.receipts: dict[tuple[str, str], Receipt] = {}

    def post(self, payment_type: str, order_id: str, body: bytes) -> str:
        # The docs write "ecom" and the spec "ECOM"; which one Vipps enforces is unknown.
        kind = payment_type.upper()
        if kind not in PAYMENT_TYPES:
            raise bad_request(
                "paymentType must be ECOM or RECURRING", field_name="paymentType", style="qr"
            )
        if not ORDER_ID.fullmatch(order_id):
            raise bad_request(
                "orderId has characters outside [0-9A-Za-z-_.]", field_name="orderId", style="qr"
            )
        receipt = decode_body(body, Receipt, "qr")
        if not receipt.order_lines:
            raise bad_request(
                "orderLines needs at least one line", field_name="OrderLines", style="qr"
            )
        if (kind, order_id) in self.receipts:
            raise SimProblem(
                409, "Conflict", f"a receipt for {order_id} already exists", style="qr"
            )
        self.receipts[(kind, order_id)] = receipt
        return str(uuid.uuid4())
