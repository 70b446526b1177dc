"""``vendgate vipps-sim``: run the Vipps MobilePay simulator over HTTP until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

from vendgate import _loop

ENV = "VENDGATE_VIPPS_"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "vipps-sim",
        help="run the Vipps MobilePay simulator (ePayment, Webhooks, QR, receipts)",
        description=(
            "Serve a faithful in-memory Vipps MobilePay test double at the real API paths. "
            "Prints its base URL http://HOST:PORT as the first line of output once it accepts "
            "connections; point the cloud's VENDGATE_VIPPS_BASE_URL at it. Merchant settings "
            "default to the VENDGATE_VIPPS_* environment, else the demo merchant. "
            "See docs/vipps-simulator.md."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to bind, 0 = any free port")
    _merchant_flags(parser)
    parser.add_argument(
        "--payment-expiry",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="seconds before an unapproved payment becomes EXPIRED (default 600, as Vipps)",
    )
    parser.add_argument(
        "--public-url", help="base URL for links handed out (default: the request's own)"
    )
    parser.add_argument(
        "--require-https", action="store_true", help="refuse http:// webhook and QR target URLs"
    )
    _fault_flags(parser)
    parser.set_defaults(handler=run)


def _merchant_flags(parser: argparse.ArgumentParser) -> None:
    from vendgate.cloud.vipps import MerchantCredentials

    demo = MerchantCredentials()
    for flag, name, default in (
        ("--client-id", "CLIENT_ID", demo.client_id),
        ("--client-secret", "CLIENT_SECRET", demo.client_secret),
        ("--subscription-key", "SUBSCRIPTION_KEY", demo.subscription_key),
        ("--msn", "MSN", demo.msn),
    ):
        parser.add_argument(
            flag, default=os.environ.get(ENV + name, default), help=f"default ${ENV}{name}"
        )


def _fault_flags(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("fault injection (all off by default)")
    for flag, help_text in (
        ("--latency", "seconds added to every API answer"),
        ("--error-share", "share of API calls answered 500 before any effect"),
        ("--error-after-effect-share", "share answered 500 after the effect (answer lost)"),
        ("--rate-limit-share", "share of API calls answered 429 with Retry-After"),
        ("--webhook-drop-share", "share of webhook events never delivered"),
        ("--webhook-duplicate-share", "share of webhook events delivered twice"),
        ("--webhook-delay", "seconds before each webhook delivery"),
    ):
        faults.add_argument(flag, type=float, default=0.0, help=help_text)
    faults.add_argument("--seed", type=int, help="random seed, for repeatable fault patterns")


def build_settings(args: argparse.Namespace) -> Any:
    from vendgate.cloud.vipps import MerchantCredentials
    from vendgate.cloud.vippssim import FaultSettings, SimSettings

    return SimSettings(
        credentials=MerchantCredentials(
            args.client_id, args.client_secret, args.subscription_key, args.msn
        ),
        payment_expiry=args.payment_expiry,
        public_url=args.public_url,
        require_https=args.require_https,
        faults=FaultSettings(
            latency=args.latency,
            error_share=args.error_share,
            error_after_effect_share=args.error_after_effect_share,
            rate_limit_share=args.rate_limit_share,
            webhook_drop_share=args.webhook_drop_share,
            webhook_duplicate_share=args.webhook_duplicate_share,
            webhook_delay=args.webhook_delay,
            seed=args.seed,
        ),
    )


def run(args: argparse.Namespace) -> int:
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(
            f"vendgate vipps-sim: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    return _loop.run(serve(sock, build_settings(args)))


async def serve(sock: socket.socket, settings: Any) -> int:
    import uvicorn

    from vendgate.cloud.vippssim import create_vipps_sim
    from vendgate.protocol import SystemClock

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn would re-raise SIGTERM after shutting down, so the exit status would say
            # "killed"; we ask it to exit instead and return 0 after a clean shutdown.
            yield

    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    app = create_vipps_sim(settings, clock=SystemClock())
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = Server(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn reports readiness only as a flag, hence the polling.
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    if server.started:
        print(url, flush=True)
    await serving
    return 0 if server.started else 1
