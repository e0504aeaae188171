"""A protocol-faithful fake of Slack (Web API, Socket Mode, signed HTTP deliveries) for tests."""

from tests.slack_fake.blockkit import Verdict, validate_message
from tests.slack_fake.payloads import BOT_USER_ID, signature
from tests.slack_fake.server import Ack, Delivery, HttpResult, SlackFake
from tests.slack_fake.web_api import ApiCall, Channel, Message

__all__ = [
    "BOT_USER_ID",
    "Ack",
    "ApiCall",
    "Channel",
    "Delivery",
    "HttpResult",
    "Message",
    "SlackFake",
    "Verdict",
    "signature",
    "validate_message",
]
