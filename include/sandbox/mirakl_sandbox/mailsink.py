"""A local SMTP sink that writes each e-mail as readable text (the demo's ``mail.log``).

aiosmtpd's ``Debugging`` handler prints the raw message: Airflow's SMTP hook sends HTML as
base64 MIME parts, so the log was unreadable. This handler decodes each message and prints its
envelope, subject and body as plain text (HTML tags dropped, links kept), and saves the original
next to the log as ``<n>.eml`` for a mail client or a browser.

Run it as aiosmtpd's handler::

    python -m aiosmtpd -n -l 127.0.0.1:8025 -c mirakl_sandbox.mailsink.ReadableMail DIR
"""

from __future__ import annotations

import html
import itertools
import re
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

_BLOCK_END = re.compile(r"</(p|div|tr|h[1-6]|li|table|ul|ol)\s*>|<br\s*/?>", re.I)
_CELL_END = re.compile(r"</t[dh]\s*>", re.I)
_LINK = re.compile(r"<a\s[^>]*href=\"([^\"]*)\"[^>]*>(.*?)</a>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")
_DROPPED = re.compile(r"<(style|script|head)[^>]*>.*?</\1\s*>", re.I | re.S)


def html_to_text(markup: str) -> str:
    """The text of an HTML e-mail body: one line per block or table row, cells separated by
    `` | ``, links as ``text [url]``."""
    text = _DROPPED.sub("", markup)
    text = _LINK.sub(lambda m: f"{m.group(2)} [{m.group(1)}]", text)
    text = _CELL_END.sub(" | ", text)
    text = _BLOCK_END.sub("\n", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [re.sub(r"[ \t]+", " ", line).strip(" |") for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def readable(message: EmailMessage) -> str:
    """Headers and the body as text (the plain part if there is one, else the HTML as text)."""
    names = ("From", "To", "Subject", "Date")
    head = [f"{name}: {message[name]}" for name in names if message[name]]
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        body = "(no text body)"
    elif part.get_content_subtype() == "html":
        body = html_to_text(part.get_content())
    else:
        body = part.get_content().strip()
    attachments = [a.get_filename() or a.get_content_type() for a in message.iter_attachments()]
    if attachments:
        body += "\n\nAttachments: " + ", ".join(attachments)
    return "\n".join(head) + "\n\n" + body


class ReadableMail:
    """aiosmtpd handler: print each message readably; keep its raw form as ``<n>.eml``."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self._numbers = itertools.count(1)

    @classmethod
    def from_cli(cls, parser: Any, *args: str) -> ReadableMail:
        """aiosmtpd's ``-c CLASS [ARGS]``: the optional argument is the folder for ``.eml``."""
        if len(args) > 1:
            parser.error("ReadableMail takes at most one argument: the folder for .eml files")
        return cls(*args)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        number = next(self._numbers)
        saved = ""
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{number:04d}.eml"
            path.write_bytes(raw)
            saved = f" (raw: {path})"
        rcpts = ", ".join(envelope.rcpt_tos)
        print(f"===== e-mail {number} to {rcpts}{saved} =====", file=sys.stdout)
        print(readable(message), file=sys.stdout)  # type: ignore[arg-type]
        print(file=sys.stdout, flush=True)
        return "250 Message accepted for delivery"
