"""``vendgate demo``: the whole system in one process, with simulated customers.

The embedded tier (amqtt broker, SQLite in a temporary folder, the Vipps simulator and the cloud
on loopback HTTP) and three simulated machines (board simulator on a pty + edge agent each) run
as tasks of one event loop. Customers then buy: a normal purchase, a jammed motor, a walk-away
timeout and a scan of a busy machine (plus ``purchases`` more normal ones), and every payment is
checked against the money rules with the amounts read back from the simulator.

It wires the edge and the cloud together, which is why it lives here: ``edge`` and ``cloud``
never import each other. Modules: ``_plan`` (machines, scenarios, expectations, the report;
pure), ``_services`` (broker, simulator, cloud), ``_machines`` (board + agent), ``_customer``
(the phone and the keypad), ``_run`` (the whole run). The manual is docs/demo.md.
"""

from ._plan import (
    MACHINES,
    MachineSpec,
    Purchase,
    Scenario,
    extra_orders,
    problems,
    scenario_orders,
)
from ._run import DemoOptions, DemoReport, run_demo
from ._services import DemoError

__all__ = [
    "MACHINES",
    "DemoError",
    "DemoOptions",
    "DemoReport",
    "MachineSpec",
    "Purchase",
    "Scenario",
    "extra_orders",
    "problems",
    "run_demo",
    "scenario_orders",
]
