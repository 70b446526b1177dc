"""vendgate: pay a vending machine with Vipps MobilePay by scanning a sticker.

The distribution maps the repository's fixed folders into this one namespace:

- ``vendgate.protocol``: the shared vocabulary (money, MQTT messages, the MDB codec); pure code.
- ``vendgate.edge``: the edge agent that sits on the vend board's MDB bus.
- ``vendgate.cloud``: the fleet backend (Litestar) and the Vipps MobilePay client and simulator.
- ``vendgate.boardsim``: the vend board (VMC) simulator, from ``firmware-sim/``.

This package itself only holds the ``vendgate`` command line and the embedded broker.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vendgate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
