"""Email into a Maildir: the embedded default transport, no server needed.

Each message is written to ``tmp/`` and then linked into ``new/`` under a
name derived from its idempotency key and installation (as its Message-ID
is), so any mail client opens the folder, a message is never half-visible,
and the same key is never delivered twice (a second delivery finds the name
taken and reports it sent), while another database's message with the same
key (a rebuilt database writing into the same folder) is delivered as its own.
Files have LF line ends, as Maildir readers (mutt, Dovecot) expect; a
DKIM signature made over the CRLF form still verifies (relaxed
canonicalisation, and a server sending the file on restores CRLF).

A Maildir that cannot be written (a missing or read-only folder, a file in the
way, a full disk) is no failure of one message: :meth:`MaildirEmailChannel.send`
raises :class:`~engine.errors.OutputError` for the batch, naming
``channels.<name>.maildir`` and what to fix. The messages written before
it are in ``new/`` and are recognised as delivered when the batch is sent again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.channels.base import (
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    SendJournal,
    message_digest,
    message_id,
)
from engine.channels.mime_template import MimeTemplate, lf_line_ends
from engine.errors import HeaderInjectionError, OutputError
from engine.reporting import output_error, remove_quietly

if TYPE_CHECKING:
    from engine.channels.dkim_signing import DkimSigner


class MaildirEmailChannel:
    """Writes each email as one file of a Maildir (``root/{tmp,new,cur}``)."""

    def __init__(
        self, root: Path, *, sender: str, domain: str, name: str = "email", signer: DkimSigner | None = None
    ) -> None:
        self.name = name
        self.root = root
        self.sender = sender
        self.domain = domain
        self.mime = MimeTemplate(sender=sender, domain=domain, signer=signer)
        self.option = f"channels.{name}.maildir"
        for folder in ("tmp", "new", "cur"):
            try:
                (root / folder).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._unwritable(root / folder / "x", exc) from exc
        self._names: set[str] | None = None

    def _unwritable(self, path: Path, error: OSError) -> OutputError:
        """The Maildir cannot be written (met at ``path`` in it): a fault of the folder, not of a message."""
        return OutputError(str(self.root), output_error(path, error).reason, option=self.option)

    def file_name(self, key: str, installation: str = "") -> str:
        """The Maildir name of the message with idempotency ``key`` of ``installation``."""
        return message_digest(key, installation) + ".crm-engine"

    def _delivered(self) -> set[str]:
        """Names already in the Maildir (``new/``, or ``cur/`` where clients add ``:2,FLAGS``), read once."""
        if self._names is None:
            try:
                names = {path.name for path in (self.root / "new").iterdir()}
                names |= {path.name.split(":", 1)[0] for path in (self.root / "cur").iterdir()}
            except OSError as exc:
                raise self._unwritable(self.root / "new" / "x", exc) from exc
            self._names = names
        return self._names

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Deliver each message once per key; a bad header is a permanent failure of that message.

        A Maildir that cannot be written raises :class:`OutputError` (see the module docstring).
        """
        results = []
        delivered = self._delivered()
        for message in messages:
            name = self.file_name(message.key, message.installation)
            reference = message_id(message.key, self.domain, installation=message.installation)
            if name in delivered:
                results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=reference))
                continue
            try:
                data = lf_line_ends(self.mime.render(message))
            except HeaderInjectionError as exc:
                results.append(DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail=str(exc)))
                continue
            # unique per writer: processes, threads and hosts sharing the folder never collide in tmp/
            temporary = self.root / "tmp" / f"{name}.{os.getpid()}.{uuid.uuid4().hex}"
            try:
                temporary.write_bytes(data)
                os.link(temporary, self.root / "new" / name)
            except FileExistsError:
                pass  # another worker delivered the same key first
            except OSError as exc:  # the folder, not this message: nothing of the rest is written either
                raise self._unwritable(temporary, exc) from exc
            finally:
                remove_quietly(temporary)
            delivered.add(name)
            results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=reference))
        return results

    async def close(self) -> None:
        """Nothing to release."""
