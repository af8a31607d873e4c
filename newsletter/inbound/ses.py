"""`POST /webhooks/ses`: Amazon SES's bounce and complaint notifications, over Amazon SNS.

SNS signs each message with a certificate of its own (sns.py proves it: our TopicArn, the
certificate from an `sns.REGION.amazonaws.com` host, the signature); a request that fails
answers 403 and changes nothing. `[bounces] sns_topics` names the topics SES notifies; with
none, the endpoint answers 404. A SubscriptionConfirmation is confirmed by visiting its
SubscribeURL. There is no replay window: SNS retries a notification for as long as its
delivery policy says, and the same event counts once anyway (SES's feedbackId).

    Bounce Permanent        hard (x.7.x: blocked, the sender's reputation)
    Bounce Transient        soft (x.7.x: blocked)
    Bounce Undetermined     by its status code, soft without one
    Complaint               complaint (complaintFeedbackType not-spam: nothing)

SES replaces our Message-ID, and bounces go to SES, not to our return path: the delivery
is named by the token the transport puts in an X-Newsletter-Delivery header, which comes
back in `mail.headers` when the identity includes original headers (event publishing
always does), or else by a Message-ID of ours among those headers.

Tests (only) trust a local SNS stand-in: NEWSLETTER_TEST_ONLY_SNS_HOST (a host:port on this
machine, nothing else) and NEWSLETTER_TEST_ONLY_SNS_CA (its CA's PEM file), both set.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ..config import Settings
from ..envelope import TOKEN_HEADER
from ..errors import ConfigError
from ..states import EventKind, EventSource
from . import sns
from .classify import kind_of, status_code
from .report import Finding, Parsed
from .webhook import FirstTime, Refused, Webhook, WebhookRequest, text_of

log = logging.getLogger(__name__)

TEST_HOST_VARIABLE = "NEWSLETTER_TEST_ONLY_SNS_HOST"
TEST_CA_VARIABLE = "NEWSLETTER_TEST_ONLY_SNS_CA"
LOOPBACK = re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}")
DEFAULT_STATUS = {EventKind.HARD: "5.1.1", EventKind.SOFT: "4.0.0"}


@dataclass
class SesWebhook(Webhook):
    trust: sns.Trust = field(default_factory=lambda: sns.Trust(()))
    source = EventSource.SES
    secret_variable = ""  # SNS signs with its own certificates: no secret of ours

    @classmethod
    def from_settings(cls, settings: Settings) -> SesWebhook | None:
        if not settings.sns_topics:
            return None
        return cls(settings, "", trust_for(settings))

    def verify(self, request: WebhookRequest, first_time: FirstTime) -> None:
        try:
            sns.verify(sns.read_message(request.body, self.trust), self.trust)
        except sns.Rejected as rejected:
            raise Refused(rejected.status, rejected.reason) from None

    def parse(self, request: WebhookRequest) -> Parsed:
        try:
            message = sns.read_message(request.body, self.trust)
            events = sns.handle(message, self.trust)
        except sns.Rejected as rejected:
            raise Refused(rejected.status, rejected.reason) from None
        parsed = Parsed(summary=f"Amazon SNS {message['Type']}")
        if message["Type"] == "Notification" and not events:
            parsed.ignored = 1  # a Delivery, Send, Open... notification
        for event in events:
            finding = self._finding(event, message.get("MessageId", ""))
            if finding is None:
                parsed.ignored += 1
            else:
                parsed.findings.append(finding)
        return parsed

    def _finding(self, event: sns.SesEvent, sns_id: str) -> Finding | None:
        status = status_code(event.status, event.diagnostic)
        if event.kind == "Complaint":
            if event.complaint_type == "not-spam":
                return None
            kind, status = EventKind.COMPLAINT, ""
        elif kind_of(status) is EventKind.BLOCKED:
            kind = EventKind.BLOCKED
        elif event.bounce_type == "Permanent":
            kind = EventKind.HARD
        elif event.bounce_type == "Transient":
            kind = EventKind.SOFT
        else:
            kind = kind_of(status)
        status = status or DEFAULT_STATUS.get(kind, "")
        tokens = [text_of(value, 60) for name, value in event.headers
                  if name.lower() == TOKEN_HEADER.lower()]
        ids = [_angled(value) for name, value in event.headers if name.lower() == "message-id"]
        key = f"ses:{event.kind}:{text_of(event.feedback_id or sns_id, 80)}:{event.recipient}"
        return Finding(kind, self.source, key, text_of(event.recipient, 254), status,
                       text_of(event.diagnostic) or event.bounce_subtype or event.complaint_type,
                       tuple(dict.fromkeys(t for t in tokens if t)),
                       tuple(dict.fromkeys(i for i in (*ids, _angled(event.message_id)) if i)),
                       event.occurred_at)


def trust_for(settings: Settings) -> sns.Trust:
    """Our topics and Amazon's SNS hosts; a local stand-in only when a test says so."""
    host = settings.env.get(TEST_HOST_VARIABLE, "").strip()
    ca_file = settings.env.get(TEST_CA_VARIABLE, "").strip()
    if not host and not ca_file:
        return sns.Trust(settings.sns_topics)
    if not (host and ca_file) or not LOOPBACK.fullmatch(host):
        raise ConfigError(f"{TEST_HOST_VARIABLE} and {TEST_CA_VARIABLE} are for the test "
                          "suite only: both set, the host a 127.0.0.1:PORT of this machine. "
                          "Unset them to trust Amazon's SNS hosts")
    log.warning("Amazon SNS: trusting the test stand-in %s (%s); never in production",
                host, TEST_HOST_VARIABLE)
    return sns.Trust(settings.sns_topics, re.compile(re.escape(host)), ca_file)


def _angled(message_id: str) -> str:
    """A Message-ID as the ledger keeps it, in <>; SES's commonHeaders may drop them."""
    text = text_of(message_id, 250)
    return text if not text or text.startswith("<") else f"<{text}>"
