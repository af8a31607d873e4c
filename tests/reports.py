"""Bounces and complaints as real mail systems write them, built from their documented formats.

RFC 3464 DSNs as Postfix (bounce(8): X-Postfix-Sender, text/rfc822-headers or the whole
message), Exim (delivery-status with Status 5.0.0 and the SMTP reply in Diagnostic-Code,
X-Failed-Recipients; and its older plain-text form), Microsoft Exchange Online / Outlook.com
(an HTML+text notice, Status 5.1.10, RESOLVER.ADR.RecipientNotFound) and Gmail (the
multi-line 550-5.1.1 reply) send them; RFC 5965 feedback reports as Yahoo's Complaint
Feedback Loop and Microsoft's JMRP send them; RFC 3834 auto-replies; and the mail a client
writes from a List-Unsubscribe mailto: link (RFC 2369).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.utils import format_datetime
from urllib.parse import unquote

DATE = format_datetime(dt.datetime(2020, 1, 16, 9, 30, tzinfo=dt.UTC))
CRLF = "\r\n"


def _join(lines: list[str]) -> bytes:
    return CRLF.join(lines).encode("utf-8") + CRLF.encode()


def headers_of(original: bytes) -> str:
    """The header section of a message, as text/rfc822-headers carries it."""
    text = original.decode("utf-8", "replace").replace("\r\n", "\n")
    return text.split("\n\n", 1)[0].replace("\n", CRLF)


def postfix_dsn(original: bytes, recipient: str, return_path: str, *,
                status: str = "5.1.1", diagnostic: str | None = None,
                whole: bool = False, message_id: str = "<20200116093000.4AB1C2@mx.efus.eu>",
                action: str = "failed") -> bytes:
    """A DSN from Postfix's bounce daemon for a message it relayed and could not deliver."""
    diagnostic = diagnostic or (f"smtp; 550 {status} <{recipient}>: Recipient address "
                                "rejected: User unknown in virtual mailbox table")
    boundary = "4AB1C2.1579167000/mx.efus.eu"
    original_part = (["Content-Description: Undelivered Message", "Content-Type: message/rfc822",
                      "", original.decode("utf-8", "replace").rstrip("\r\n")]
                     if whole else
                     ["Content-Description: Undelivered Message Headers",
                      "Content-Type: text/rfc822-headers", "", headers_of(original)])
    return _join([
        "Return-Path: <>",
        f"Delivered-To: {return_path}",
        "Received: by mx.efus.eu (Postfix) id 4AB1C2; " + DATE,
        f"Date: {DATE}",
        "From: MAILER-DAEMON@mx.efus.eu (Mail Delivery System)",
        "Subject: Undelivered Mail Returned to Sender",
        f"To: {return_path}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit",
        f"Message-Id: {message_id}",
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host mx.efus.eu.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "                   The mail system",
        "",
        f"<{recipient}>: host mx.example.net[192.0.2.25] said: 550 {status}",
        f"    <{recipient}>: Recipient address rejected: User unknown (in reply to RCPT TO",
        "    command)",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.efus.eu",
        "X-Postfix-Queue-ID: 4AB1C2",
        f"X-Postfix-Sender: rfc822; {return_path}",
        f"Arrival-Date: {DATE}",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        "Remote-MTA: dns; mx.example.net",
        f"Diagnostic-Code: {diagnostic}",
        "",
        f"--{boundary}",
        *original_part,
        "",
        f"--{boundary}--",
    ])


def exim_dsn(original: bytes, recipient: str, return_path: str, *,
             reply: str = "550 5.1.1 <{r}>: Recipient address rejected: User unknown") -> bytes:
    """Exim 4's DSN: Status 5.0.0, the remote reply in Diagnostic-Code, the message's headers."""
    boundary = "1579167000-eximdsn-1804289383"
    reply = reply.format(r=recipient)
    return _join([
        f"Envelope-to: {return_path}",
        f"Delivery-date: {DATE}",
        "Received: from Debian-exim by mail.efus.eu with local (Exim 4.94.2) id 1irYfA-0004nC-9U",
        f"X-Failed-Recipients: {recipient}",
        "Auto-Submitted: auto-replied",
        "From: Mail Delivery System <Mailer-Daemon@mail.efus.eu>",
        f"To: {return_path}",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary={boundary}',
        "MIME-Version: 1.0",
        "Subject: Mail delivery failed: returning message to sender",
        "Message-Id: <E1irYfA-0004nC-9U@mail.efus.eu>",
        f"Date: {DATE}",
        "",
        f"--{boundary}",
        "Content-type: text/plain; charset=us-ascii",
        "",
        "This message was created automatically by mail delivery software.",
        "",
        "A message that you sent could not be delivered to one or more of its",
        "recipients. This is a permanent error. The following address(es) failed:",
        "",
        f"  {recipient}",
        "    host mx.example.net [192.0.2.25]",
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:",
        f"    {reply}",
        "",
        f"--{boundary}",
        "Content-type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mail.efus.eu",
        "",
        "Action: failed",
        f"Final-Recipient: rfc822;{recipient}",
        "Status: 5.0.0",
        "Remote-MTA: dns; mx.example.net",
        f"Diagnostic-Code: smtp; {reply}",
        "",
        f"--{boundary}",
        "Content-type: text/rfc822-headers",
        "",
        headers_of(original),
        "",
        f"--{boundary}--",
    ])


def exim_legacy(original: bytes, recipient: str, return_path: str) -> bytes:
    """Exim's old plain-text bounce (no delivery-status part): what flufl.bounce reads."""
    return _join([
        f"Envelope-to: {return_path}",
        "From: Mail Delivery System <Mailer-Daemon@mail.example.net>",
        f"To: {return_path}",
        "Subject: Mail delivery failed: returning message to sender",
        "Message-Id: <E1irZZZ-0001aa-00@mail.example.net>",
        f"X-Failed-Recipients: {recipient}",
        "Auto-Submitted: auto-replied",
        f"Date: {DATE}",
        "",
        "This message was created automatically by mail delivery software.",
        "",
        "A message that you sent could not be delivered to one or more of its",
        "recipients. This is a permanent error. The following address(es) failed:",
        "",
        f"  {recipient}",
        "    mailbox is full: retry timeout exceeded",
        "",
        "------ This is a copy of the message, including all the headers. ------",
        "",
        headers_of(original),
        "",
        "(body omitted)",
    ])


def exchange_ndr(original: bytes, recipient: str, return_path: str, *,
                 status: str = "5.1.10",
                 diagnostic: str = "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
                                   "not found by SMTP address lookup") -> bytes:
    """An Exchange Online / Outlook.com non-delivery report."""
    outer, inner = "_000_DM6PR11MB4657reportoutlook_", "_001_DM6PR11MB4657alt_"
    subject = "Efus Newsletter"
    return _join([
        "From: Microsoft Outlook <postmaster@outlook.com>",
        f"To: <{return_path}>",
        f"Date: {DATE}",
        f"Subject: Undeliverable: {subject}",
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{outer}\"",
        "Content-Language: en-US",
        "Message-ID: <b9b1f0d2-5f7a-4a5e-bd2e-0c7e1f2a9c11@DM6PR11MB4657.namprd11.prod."
        "outlook.com>",
        "X-MS-Exchange-Message-Is-Ndr:",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "",
        f"--{outer}",
        f"Content-Type: multipart/alternative; differences=Content-Type; boundary=\"{inner}\"",
        "",
        f"--{inner}",
        "Content-Type: text/plain; charset=\"us-ascii\"",
        "",
        "Your message to " + recipient + " couldn't be delivered.",
        f"{recipient.partition('@')[0]} wasn't found at {recipient.partition('@')[2]}.",
        "",
        f"Remote Server returned '550 {status} RESOLVER.ADR.RecipientNotFound; Recipient not "
        "found by SMTP address lookup'",
        "",
        f"--{inner}",
        "Content-Type: text/html; charset=\"us-ascii\"",
        "",
        f"<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>",
        "",
        f"--{inner}--",
        "",
        f"--{outer}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns;DM6PR11MB4657.namprd11.prod.outlook.com",
        "Received-From-MTA: dns;mail.efus.eu",
        f"Arrival-Date: {DATE}",
        "",
        f"Final-Recipient: rfc822;{recipient}",
        "Action: failed",
        f"Status: {status}",
        f"Diagnostic-Code: {diagnostic}",
        "",
        f"--{outer}",
        "Content-Type: message/rfc822",
        "",
        original.decode("utf-8", "replace").rstrip("\r\n"),
        "",
        f"--{outer}--",
    ])


def gmail_dsn(original: bytes, recipient: str, return_path: str, *,
              status: str = "5.1.1", lines: tuple[str, ...] | None = None) -> bytes:
    """Gmail's DSN (as when sending through Google Workspace's relay)."""
    lines = lines or (f"550-{status} The email account that you tried to reach does not exist. "
                      "Please try",
                      f"550-{status} double-checking the recipient's email address for typos or",
                      f"550-{status} unnecessary spaces. For more information, go to",
                      f"550 {status}  https://support.google.com/mail/?p=NoSuchUser "
                      "a1si2718281qkb.9 - gsmtp")
    boundary = "000000000000a1b2c3059c2d4e5f"
    return _join([
        f"Delivered-To: {return_path}",
        "Return-Path: <>",
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        f"To: {return_path}",
        "Auto-Submitted: auto-replied",
        "Subject: Delivery Status Notification (Failure)",
        "Message-ID: <5e1f2a3b.1c69fb81.a1b2c.3d4eSMTPIN_ADDED_MISSING@mx.google.com>",
        f"Date: {DATE}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; boundary="{boundary}"; report-type=delivery-status',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="UTF-8"',
        "",
        "** Address not found **",
        "",
        f"Your message wasn't delivered to {recipient} because the address couldn't be "
        "found, or is unable to receive mail.",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; googlemail.com",
        "Received-From-MTA: dns; newsletter@efus.eu",
        f"Arrival-Date: {DATE}",
        "X-Original-Message-ID: <2020-01.abcdefghijklmnop@efus.eu>",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        "Action: failed",
        f"Status: {status}",
        "Remote-MTA: dns; mx.example.net. (192.0.2.25, the server for the domain",
        " example.net.)",
        "Diagnostic-Code: smtp; " + "\r\n ".join(lines),
        f"Last-Attempt-Date: {DATE}",
        "",
        f"--{boundary}",
        "Content-Type: message/rfc822",
        "",
        original.decode("utf-8", "replace").rstrip("\r\n"),
        "",
        f"--{boundary}--",
    ])


def yahoo_arf(original: bytes, recipient: str, return_path: str) -> bytes:
    """A complaint from Yahoo's Complaint Feedback Loop: ARF with the whole original."""
    boundary = "----=_Part_1234567_987654321.1579167000000"
    return _join([
        "From: feedback@arf.mail.yahoo.com",
        "To: fbl@efus.eu",
        "Subject: FW: Efus Newsletter",
        "Message-ID: <1579167000.abcdef@arf.mail.yahoo.com>",
        f"Date: {DATE}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit",
        "",
        "This is an email abuse report for an email message from mail.efus.eu on " + DATE,
        "",
        f"--{boundary}",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: Yahoo!-Mail-Feedback/2.0",
        "Version: 0.1",
        f"Original-Mail-From: <{return_path}>",
        f"Original-Rcpt-To: <{recipient}>",
        f"Received-Date: {DATE}",
        "Source-IP: 192.0.2.10",
        "Authentication-Results: mta1000.mail.gq1.yahoo.com  from=efus.eu; domainkeys=neutral; "
        "from=efus.eu; dkim=pass (ok)",
        "Reported-Domain: efus.eu",
        "",
        f"--{boundary}",
        "Content-Type: message/rfc822",
        "",
        f"Return-Path: <{return_path}>",
        "Received: from 192.0.2.10 (EHLO mail.efus.eu) by mta1000.mail.gq1.yahoo.com",
        original.decode("utf-8", "replace").rstrip("\r\n"),
        "",
        f"--{boundary}--",
    ])


def microsoft_arf(original: bytes, recipient: str) -> bytes:
    """A complaint from Microsoft's Junk Mail Reporting Program (Outlook.com): ARF whose
    original carries the recipient in X-HmXmrOriginalRecipient."""
    boundary = "--boundary_0_e5f3d6a1-2b3c-4d5e-8f90-123456789abc"
    return _join([
        "From: staff@hotmail.com",
        "To: jmrp@efus.eu",
        "Subject: complaint about message from 192.0.2.10",
        "Message-ID: <a0b1c2d3-e4f5-6789-abcd-ef0123456789@BAY004-MC1F1.hotmail.com>",
        f"Date: {DATE}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is an email abuse report for an email message received from IP 192.0.2.10 on "
        + DATE,
        "",
        f"--{boundary}",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: Hotmail FBL",
        "Version: 1.0",
        f"Arrival-Date: {DATE}",
        "Source-IP: 192.0.2.10",
        "",
        f"--{boundary}",
        "Content-Type: message/rfc822",
        "",
        f"X-HmXmrOriginalRecipient: <{recipient}>",
        original.decode("utf-8", "replace").rstrip("\r\n"),
        "",
        f"--{boundary}--",
    ])


def auto_reply(kind: str, to: str) -> bytes:
    """Out-of-office replies: RFC 3834 (Gmail), Exchange's 'Automatic reply:', X-Autoreply."""
    head = {
        "rfc3834": ["From: Ana Lopez <ana@example.org>", "Auto-Submitted: auto-replied",
                    "Subject: Re: Efus Newsletter"],
        "exchange": ["From: Jean Dupont <jean@example.net>",
                     "Subject: Automatic reply: Efus Newsletter",
                     "X-Auto-Response-Suppress: All", "Auto-Submitted: auto-generated"],
        "x-autoreply": ["From: info@example.com", "X-Autoreply: yes",
                        "Subject: Thank you for your message"],
        "vacation": ["From: mayor@example.fr",
                     "Subject: =?utf-8?q?R=C3=A9ponse_automatique=3A_Efus_Newsletter?="],
    }[kind]
    return _join([*head, f"To: {to}", f"Date: {DATE}", "Message-ID: <ooo.1@example.org>",
                  "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
                  "I am out of the office until 3 February, with limited access to email."])


def plain_mail(to: str) -> bytes:
    """A person writing to the bounce address."""
    return _join(["From: Ana Lopez <ana@example.org>", f"To: {to}", f"Date: {DATE}",
                  "Subject: Please change my address", "Message-ID: <human.1@example.org>",
                  "", "Hello, please send the newsletter to my new address."])


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def mailto_request(message: bytes, sender: str = "someone@example.org") -> bytes:
    """The email a mail client writes from the message's List-Unsubscribe mailto: link."""
    header = email.message_from_bytes(message, policy=email.policy.default)["List-Unsubscribe"]
    mailto = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", str(header))
    assert mailto is not None, header
    return (f"From: <{sender}>\r\nTo: <{mailto[1]}>\r\nSubject: {unquote(mailto[2])}\r\n"
            "Message-ID: <request.1@example.org>\r\n\r\n").encode()
