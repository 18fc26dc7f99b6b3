"""Kept for compatibility: ``Message`` and ``ReplyChannel`` live in
``channels_distributed.legacy.message`` now.

``from channels_distributed.message import Message, ReplyChannel`` imported them before the legacy
support became one package, and keeps working; ``from channels_distributed import Message`` is the
documented path.
"""

from __future__ import annotations

from channels_distributed.legacy.message import (
    Message,
    ReplyChannel,
    SupportsSend,
    SupportsSendSoon,
)

__all__ = ["Message", "ReplyChannel", "SupportsSend", "SupportsSendSoon"]
