"""Order Management API v2: attach a receipt to a payment (``post-receipt-v2``)."""

from __future__ import annotations

from ._epayment import check_reference
from ._http import VippsHttp, decode
from ._schemas import Receipt, ReceiptPaymentType


class OrderManagementApi:
    def __init__(self, http: VippsHttp) -> None:
        self._http = http

    async def post_receipt(
        self, reference: str, receipt: Receipt, *, payment_type: ReceiptPaymentType = "ECOM"
    ) -> str:
        """Post the receipt for an ePayment ``reference`` (ECOM covers ePayment); returns its id.

        A receipt is immutable: posting a second one for the same order is a 409.
        """
        path = f"/order-management/v2/{payment_type}/receipts/{check_reference(reference)}"
        return decode(await self._http.call("POST", path, body=receipt), str)
