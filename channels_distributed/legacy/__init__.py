"""The legacy (Channels 1 / ASGI 1) support: ``consumer(message)`` answering through
``message['reply_channel'].send({...})``.

* ``message.py``: ``Message`` and ``ReplyChannel``, the contract a legacy consumer sees (also
  ``channels_distributed.Message`` and ``channels_distributed.ReplyChannel``);
* ``conversion.py``: ASGI 1 message formats <-> ASGI 3 events, sans-I/O (no asyncio);
* ``replies.py``: the in-process layer behind an adapted consumer's ``reply_channel``;
* ``adapter.py``: ``LegacyAdapter``, the ASGI 3 application that runs a legacy consumer
  (``channels_distributed.interfaces.adapt`` chooses it).

Nothing is imported here, so that importing ``conversion`` alone stays free of asyncio.
"""
