"""The customer's side: scan, status page, and what they show."""

from vendgate.cloud.errors import RateLimited

from ._controllers import CustomerController
from ._limits import CustomerLimits
from ._pages import CONTENT_SECURITY_POLICY, POLL_MS, error_page, status_page
from ._service import (
    CustomerService,
    Purchases,
    Started,
    StatusView,
    customer_state,
    status_view,
)

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "POLL_MS",
    "CustomerController",
    "CustomerLimits",
    "CustomerService",
    "Purchases",
    "RateLimited",
    "Started",
    "StatusView",
    "customer_state",
    "error_page",
    "status_page",
    "status_view",
]
