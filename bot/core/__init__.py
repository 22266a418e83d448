"""Channel-agnostic core: neutral message types, routing and the dialogue engine."""

from bot.core.messages import Attachment, Button, Incoming, Reply
from bot.core.router import Context, Router

__all__ = ["Attachment", "Button", "Context", "Incoming", "Reply", "Router"]
