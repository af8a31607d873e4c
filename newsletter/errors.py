"""The exception tree. The CLI turns these into one-line messages and exit codes.

    NewsletterError
    +-- IssueFileError        the issue file or its theme is wrong (carries every Problem)
    +-- NotReady              the composed issue has errors that `check` reports
    +-- ConfigError           newsletter.toml, the environment or a command line is wrong
    +-- HeaderInjectionError  a value meant for a header (a subscriber's name, a reviewer's
    |                         address) would carry a line break or a control character
    +-- StoreError            the database refused an operation
    +-- AlreadyRunning        another process is sending the same issue (or reading bounces)
    +-- MailboxError          the bounce mailbox cannot be reached or read (host, reply)
    +-- TransportError        the mail server or service failed as a whole (provider, status)
        +-- TransportUnavailable  try again later (connection refused, 4xx, timeout before data)
        |   +-- QuotaExhausted    the service's sending quota is used up: the run pauses
        +-- AuthenticationError   credentials were refused; stop the run
        +-- OutcomeUnknown        the data left but no verdict came back
"""

from __future__ import annotations

from dataclasses import dataclass


class NewsletterError(Exception):
    """Root of every error the program reports to its user without a traceback."""

    hint: str = ""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located so that the user can jump to it."""

    path: str
    line: int | None
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        field = f" {self.field}:" if self.field else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}:{field} {prefix}{self.message}"


class IssueFileError(NewsletterError):
    """The issue file cannot be read or is not valid; every problem is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class NotReady(NewsletterError):
    """`check` found errors in the composed issue; `findings` holds warnings too."""

    def __init__(self, shown: str, findings: list[Problem]) -> None:
        self.findings = findings
        self.errors = [f for f in findings if f.severity == "error"]
        super().__init__(f"{shown} has {len(self.errors)} error(s); nothing was sent or "
                         "approved")
        self.hint = f"Fix them (newsletter check {shown}) and run the command again."


class ConfigError(NewsletterError):
    """A setting is missing or wrong; nothing was sent."""


class HeaderInjectionError(NewsletterError):
    """A value meant for a mail header carries CR, LF, NUL or a Unicode line separator."""


class StoreError(NewsletterError):
    """The subscriber store or the send ledger refused an operation."""


class AlreadyRunning(NewsletterError):
    """Another process holds the send lock of this issue."""


class MailboxError(NewsletterError):
    """The IMAP mailbox of `bounces fetch` refused or failed; nothing was lost."""


class TransportError(NewsletterError):
    """The transport failed for a whole batch.

    `provider` names the server or service (`smtp.example.org:587`, `postmark`), `status`
    is its numeric answer (an SMTP reply code or an HTTP status) when there was one, and
    `reply` a short excerpt of what it said, never a secret.
    """

    def __init__(self, message: str, reply: str = "", *, provider: str = "",
                 status: int | None = None) -> None:
        self.reply, self.provider, self.status = reply, provider, status
        super().__init__(message)


class TransportUnavailable(TransportError):
    """Nothing was accepted; the same messages can be tried again later."""

    def __init__(self, message: str, reply: str = "", retry_after: float | None = None,
                 throttled: bool = False, *, provider: str = "",
                 status: int | None = None) -> None:
        self.retry_after = retry_after
        self.throttled = throttled
        super().__init__(message, reply, provider=provider, status=status)


class QuotaExhausted(TransportUnavailable):
    """The service refuses everything until its quota frees up (e.g. Amazon SES's 24-hour
    quota): waiting in this run is pointless, so the run pauses and a later one resumes."""


class AuthenticationError(TransportError):
    """The server refused the credentials: retrying cannot help."""


class OutcomeUnknown(TransportError):
    """The message data left this machine but no verdict arrived."""
