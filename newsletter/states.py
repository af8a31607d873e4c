"""The closed sets of states that several modules compare: defined once, here.

A leaf module: it imports nothing of the project. The values are what the database and
`status --json` hold, so they never change once shipped.
"""

from __future__ import annotations

import enum


class DeliveryState(enum.StrEnum):
    """One recipient of a send: pending -> sending -> sent | deferred | failed | unknown,
    or skipped (no longer subscribed when their turn came)."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a run; handed over or about to be
    SENT = "sent"  # the server accepted the message
    DEFERRED = "deferred"  # refused for now; retried after next_attempt_at
    FAILED = "failed"  # refused for good, or deferred past give_up_after
    UNKNOWN = "unknown"  # handed over, no verdict came back: re-sent only on request
    SKIPPED = "skipped"


FINAL_DELIVERY_STATES = (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.SKIPPED)
WAITING_DELIVERY_STATES = (DeliveryState.PENDING, DeliveryState.DEFERRED,
                           DeliveryState.SENDING)


class SendState(enum.StrEnum):
    """How the send of one issue stands, as the last run left it."""

    RUNNING = "running"
    COMPLETE = "complete"  # every recipient has a final verdict (or an unknown one)
    INCOMPLETE = "incomplete"  # some recipients deferred: run again later
    PAUSED = "paused"  # too many temporary failures in a row
    INTERRUPTED = "interrupted"  # stopped by a signal
    FAILED = "failed"  # a fatal error (credentials, configuration) stopped the run
    DRY_RUN = "dry-run"  # nothing sent or recorded (never stored)


class ScheduleAction(enum.StrEnum):
    """What `send --due` does with one issue file."""

    UNSCHEDULED = "unscheduled"  # no send_at
    WAIT = "wait"  # not due yet
    START = "start"
    RESUME = "resume"
    DONE = "done"  # already sent
    REFUSE = "refuse"  # late, invalid or not approved: nothing sent


class SubscriberStatus(enum.StrEnum):
    """One person in the subscriber store; anything but active is never mailed a newsletter."""

    ACTIVE = "active"
    PENDING = "pending"  # signed up on the form, not confirmed yet
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # a hard bounce
    COMPLAINED = "complained"  # marked as spam


SUPPRESSED_STATUSES = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED,
                       SubscriberStatus.COMPLAINED)


class EventKind(enum.StrEnum):
    """What a report that came back says about one delivery (see inbound/classify.py)."""

    HARD = "hard"  # the mailbox does not exist (5.1.x): suppressed at once
    SOFT = "soft"  # full, temporary or unexplained: suppressed after repeated sends
    BLOCKED = "blocked"  # refused by policy or as spam (x.7.x): the sender's reputation
    COMPLAINT = "complaint"  # marked as spam by the recipient: suppressed at once


class EventSource(enum.StrEnum):
    """Which intake a report came through."""

    PIPE = "pipe"  # `bounces receive`, from the mail server
    IMAP = "imap"  # `bounces fetch`
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    SES = "ses"  # Amazon SES, over Amazon SNS


class Disposition(enum.StrEnum):
    """What became of one incoming message or webhook event."""

    RECORDED = "recorded"  # a new event about a known delivery
    DUPLICATE = "duplicate"  # the same report came before: counted once
    IGNORED = "ignored"  # a report that changes nothing (delayed, delivered, not-spam)
    AUTO_REPLY = "auto-reply"  # an out-of-office or other RFC 3834 auto-reply
    UNMATCHED = "unmatched"  # a report that names no delivery of ours, or cannot prove it
    NOT_A_REPORT = "not-a-report"  # mail that is not a bounce or complaint: for a person
    UNSUBSCRIBED = "unsubscribed"  # a List-Unsubscribe request by mail, with a valid token
