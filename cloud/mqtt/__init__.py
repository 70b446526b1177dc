"""The cloud's MQTT side: one connection, the message handlers, the outbox publisher."""

from ._handlers import MessageHandler, apply_vend_event
from ._link import MqttLink, NotConnected
from ._publisher import publish_outbox, run_publisher

__all__ = [
    "MessageHandler",
    "MqttLink",
    "NotConnected",
    "apply_vend_event",
    "publish_outbox",
    "run_publisher",
]
