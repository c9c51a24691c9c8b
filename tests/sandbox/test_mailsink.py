"""The demo's SMTP sink writes e-mails people can read (decoded, HTML as text, links kept)."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from mirakl_sandbox.mailsink import html_to_text

HTML = """<html><head><style>td {color: red}</style></head><body>
<h2>Failed operations</h2><p>2 transfers failed &amp; 1 payout.</p>
<table><tr><th>Order</th><th>Reason</th></tr>
<tr><td>ORD-1</td><td>Stripe refused: insufficient funds</td></tr></table>
<p>See <a href="http://127.0.0.1:8080/dags/x">the run</a>.</p></body></html>"""


def test_html_to_text_keeps_rows_cells_and_links():
    text = html_to_text(HTML)
    assert text.splitlines() == [
        "Failed operations",
        "2 transfers failed & 1 payout.",
        "Order | Reason",
        "ORD-1 | Stripe refused: insufficient funds",
        "See the run [http://127.0.0.1:8080/dags/x].",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sink_prints_a_base64_html_mail_as_text(tmp_path: Path):
    """End to end as the demo runs it: aiosmtpd's CLI with our handler, a real SMTP client."""
    port = _free_port()
    log = tmp_path / "mail.log"
    with log.open("w") as out:
        sink = subprocess.Popen(
            [sys.executable, "-u", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
             "-c", "mirakl_sandbox.mailsink.ReadableMail", str(tmp_path / "mail")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        message = EmailMessage()
        message["From"] = "connector@demo.test"
        message["To"] = "ops@demo.test"
        message["Subject"] = "KYC required"
        message.set_content(HTML, subtype="html", cte="base64")
        for _ in range(100):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
                    client.send_message(message)
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(100):
            if "Stripe refused" in log.read_text():
                break
            time.sleep(0.1)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    text = log.read_text()
    assert "Subject: KYC required" in text
    assert "ORD-1 | Stripe refused: insufficient funds" in text
    assert "PGh0bWw" not in text  # no base64 left ("<html" encoded)
    assert b"Subject: KYC required" in (tmp_path / "mail" / "0001.eml").read_bytes()
