"""A channel that keeps messages in memory: for tests and dry runs, with the same contract as the others."""

from __future__ import annotations

from collections.abc import Sequence

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal


class MemoryChannel:
    """Records every message it is given; a key seen before is not recorded again.

    ``fail`` maps recipients to the status they get instead of being sent, so
    tests can exercise temporary and permanent failures.
    """

    def __init__(self, name: str = "memory", fail: dict[str, DeliveryStatus] | None = None) -> None:
        self.name = name
        self.fail = dict(fail or {})
        self.sent: dict[str, OutgoingMessage] = {}

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Record each message once per key."""
        results = []
        for message in messages:
            status = self.fail.get(message.recipient)
            if status is not None:
                results.append(
                    DeliveryResult(message.key, status, detail=f"{status.value} for {message.recipient}")
                )
                continue
            self.sent.setdefault(message.key, message)
            results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=message.key))
        return results

    async def close(self) -> None:
        """Nothing to release."""
