"""The customer's side: scan, status page, and what they show."""

from vendgate.cloud.errors import RateLimited

from ._controllers import CustomerController
from ._limits import CustomerLimits
from ._pages import CONTENT_SECURITY_POLICY, error_page, status_page
from ._service import Started, StatusView, customer_state, start_purchase, status_view

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CustomerController",
    "CustomerLimits",
    "RateLimited",
    "Started",
    "StatusView",
    "customer_state",
    "error_page",
    "start_purchase",
    "status_page",
    "status_view",
]
