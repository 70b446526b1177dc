"""msgspec Structs mirroring the Vipps request and response bodies we use.

Field names are snake_case here and camelCase on the wire (``rename="camel"``); optional fields
left at their default are omitted, as Vipps' own examples do, so a field the spec requires
never has a default here. Responses tolerate unknown fields,
because Vipps adds fields without bumping the API version.
"""

from __future__ import annotations

from typing import Literal

import msgspec

PaymentState = Literal["CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED"]
PaymentEventName = Literal[
    "CREATED", "ABORTED", "EXPIRED", "CANCELLED", "CAPTURED", "REFUNDED", "AUTHORIZED", "TERMINATED"
]
UserFlow = Literal["PUSH_MESSAGE", "NATIVE_REDIRECT", "WEB_REDIRECT", "QR"]
CustomerInteraction = Literal["CUSTOMER_PRESENT", "CUSTOMER_NOT_PRESENT"]
QrImageFormat = Literal["image/png", "image/svg+xml", "image/*", "text/targetUrl"]
# Merchant callback QRs pick their image by a query parameter instead of ``Accept``.
CallbackQrImageFormat = Literal["PNG", "SVG"]
ReceiptPaymentType = Literal["ECOM", "RECURRING"]


class VippsBody(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """Base of every Vipps JSON body."""


class Amount(VippsBody):
    value: int
    currency: str


class Customer(VippsBody):
    """Exactly one of the three identifies the customer (the spec's ``oneOf``)."""

    phone_number: str | None = None
    personal_qr: str | None = None
    customer_token: str | None = None


class PaymentMethod(VippsBody):
    type: str


class CreatePaymentRequest(VippsBody):
    amount: Amount
    reference: str
    user_flow: UserFlow
    payment_method: PaymentMethod
    customer: Customer | None = None
    customer_interaction: CustomerInteraction | None = None
    return_url: str | None = None
    payment_description: str | None = None
    metadata: dict[str, str] | None = None


class CreatePaymentResponse(VippsBody):
    reference: str
    redirect_url: str | None = None


class Aggregate(VippsBody):
    authorized_amount: Amount
    cancelled_amount: Amount
    captured_amount: Amount
    refunded_amount: Amount


class PaymentMethodResponse(VippsBody):
    type: str
    card_bin: str | None = None


class ProfileResponse(VippsBody):
    sub: str | None = None


class Payment(VippsBody):
    """``GetPaymentResponse``: the current state of one payment."""

    aggregate: Aggregate
    amount: Amount
    state: PaymentState
    payment_method: PaymentMethodResponse
    profile: ProfileResponse
    psp_reference: str
    reference: str
    redirect_url: str | None = None
    metadata: dict[str, str] | None = None


class PaymentEvent(VippsBody):
    reference: str
    psp_reference: str
    name: PaymentEventName
    amount: Amount
    timestamp: str
    success: bool
    idempotency_key: str | None = None


class ModificationRequest(VippsBody):
    """Capture and refund bodies."""

    modification_amount: Amount


class CancelRequest(VippsBody):
    cancel_transaction_only: bool | None = None


class ModificationResponse(VippsBody):
    amount: Amount
    state: PaymentState
    aggregate: Aggregate
    psp_reference: str
    reference: str


class ForceApproveRequest(VippsBody):
    customer: Customer | None = None
    token: str | None = None


class WebhookEvent(VippsBody):
    """The body of an ``epayments.payment.*.v1`` webhook."""

    msn: str
    reference: str
    psp_reference: str
    name: PaymentEventName
    amount: Amount
    timestamp: str
    success: bool
    idempotency_key: str | None = None


class ExtraDetail(VippsBody):
    name: str
    reason: str


class Problem(VippsBody):
    """RFC 7807 error body of ePayment and Webhooks."""

    type: str
    title: str
    status: int
    trace_id: str
    detail: str | None = None
    instance: str | None = None
    extra_details: list[ExtraDetail] | None = None


class AccessTokenResponse(msgspec.Struct, kw_only=True):
    """``AuthorizationTokenResponse``: snake_case on the wire, and every field a string."""

    token_type: str
    expires_in: str
    ext_expires_in: str
    expires_on: str
    not_before: str
    resource: str
    access_token: str


class RegisterWebhookRequest(VippsBody):
    url: str
    events: list[str]


class WebhookRegistration(VippsBody):
    """What registration returns; the secret is shown once and signs every delivery."""

    id: str
    secret: str


class Webhook(VippsBody):
    id: str
    url: str
    events: list[str]


class WebhookList(VippsBody):
    webhooks: list[Webhook]


class MerchantRedirectQrRequest(VippsBody):
    id: str
    redirect_url: str
    ttl: int | None = None


class MerchantRedirectQrUpdate(VippsBody):
    redirect_url: str


class MerchantRedirectQr(VippsBody):
    id: str
    url: str
    redirect_url: str
    expires_in: int | None = None


class MerchantCallbackQrRequest(VippsBody):
    """``MerchantCallbackPutRequest``: shown in the app when the QR is scanned (max 36)."""

    location_description: str


class MerchantCallbackQr(VippsBody):
    """A merchant callback QR: scanning it sends ``user.checked-in.v1``, never opens a URL."""

    merchant_serial_number: str
    merchant_qr_id: str
    location_description: str
    qr_image_url: str
    qr_content: str


class CheckedIn(VippsBody):
    """The body of a ``user.checked-in.v1`` webhook: a customer scanned a merchant callback QR.

    ``customer_token`` (valid 15 minutes) starts a payment for that customer
    (``Customer(customer_token=...)``). Vipps documents all four fields; only the two a purchase
    needs are required here, so a terse sender is not refused.
    """

    customer_token: str
    merchant_qr_id: str
    msn: str | None = None
    initiated_at: str | None = None


class UnitInfo(VippsBody):
    unit_price: int
    quantity: str
    quantity_unit: str | None = None


class OrderLine(VippsBody):
    name: str
    id: str
    total_amount: int
    total_amount_excluding_tax: int
    total_tax_amount: int
    tax_rate: int | None = None
    unit_info: UnitInfo | None = None
    discount: int | None = None
    product_url: str | None = None
    is_return: bool | None = None
    is_shipping: bool | None = None


class BottomLine(VippsBody):
    currency: str
    tip_amount: int | None = None
    pos_id: str | None = None
    receipt_number: str | None = None


class Receipt(VippsBody):
    order_lines: list[OrderLine]
    bottom_line: BottomLine
