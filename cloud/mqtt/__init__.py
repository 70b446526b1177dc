"""The cloud's MQTT side: one connection, the message handlers, the outbox publisher."""

from ._handlers import MessageHandler, vend_input
from ._link import MqttLink, NotConnected, Reply
from ._publisher import OutboxPublisher

__all__ = [
    "MessageHandler",
    "MqttLink",
    "NotConnected",
    "OutboxPublisher",
    "Reply",
    "vend_input",
]
