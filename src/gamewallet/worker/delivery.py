"""Payment callback delivery (protocols.md 1.6): the wallet notifies the game of a payment.

The seamless payment use case writes one outbox message (topic ``payment_callback``) in the
same database transaction as the debit; its payload is the callback's form fields, already
signed (``ts`` and ``sign`` fixed at payment time, so every attempt sends the same bytes).
This handler POSTs them to the client's ``payment_callback_url`` and counts the message
delivered only when the game answers HTTP 200 with ``{"code": 0}``. Anything else is retried on
the schedule; the worker records every attempt's error and dead-letters after the window.
"""

from __future__ import annotations

from gamewallet.clients.seamless import GameClient, SeamlessError
from gamewallet.service.seamless import TOPIC_PAYMENT_CALLBACK
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import OutboxRecord
from gamewallet.worker.runner import Dead, Done, Outcome, Retry

__all__ = ["TOPIC_PAYMENT_CALLBACK", "PaymentCallbackDelivery"]


class PaymentCallbackDelivery:
    """The worker's handler of topic ``payment_callback``; one POST per attempt."""

    def __init__(self, store: Store, sender: GameClient) -> None:
        self.store = store
        self.sender = sender

    async def __call__(self, message: OutboxRecord) -> Outcome:
        if message.client_id is None:
            return Dead("payment callback without a client")
        client = await self.store.run(do(ops.GetClient(client_id=message.client_id)))
        if client is None:
            return Dead(f"client {message.client_id} does not exist")
        url = client.config.get("payment_callback_url")
        if not isinstance(url, str) or not url:
            # The operator may still configure it: keep the message on its schedule.
            return Retry(f"client {client.name} has no payment_callback_url")
        fields = {str(name): str(value) for name, value in message.payload.items()}
        try:
            await self.sender.send_payment_callback(url, fields)
        except SeamlessError as exc:
            return Retry(f"{type(exc).__name__}: {exc}")
        return Done()
