"""newsletter.toml + environment -> Settings.

Everything that belongs to the newsletter rather than to one issue lives here. Secrets never
do: they come from the environment only (NEWSLETTER_SECRET, NEWSLETTER_SMTP_PASSWORD,
NEWSLETTER_API_KEY, NEWSLETTER_IMAP_PASSWORD and the webhook keys), so that no file in the
repository ever holds one.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "newsletter.toml"
DEFAULT_CONSENT = ("I would like to receive this newsletter by email. I can unsubscribe at "
                   "any time with the link at the bottom of every email.")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
RETURN_PATH = re.compile(r"^[A-Za-z0-9._-]{1,40}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47's shape: fr, fr-BE, zh-Hant
TOPIC_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class Settings:
    root: Path  # the folder holding newsletter.toml (or the working folder)
    source: Path | None  # the file read, if any
    name: str = "Newsletter"
    sender: str = "Newsletter <newsletter@example.org>"
    reply_to: str | None = None
    postal_address: str = ""  # required for bulk mail: `check` refuses an issue without
    base_url: str = "https://newsletter.example.org"
    template: str = "default"
    language: str = "en"
    # languages a reader of another one reads, best first: (("lb", ("fr", "de")), ...)
    language_fallbacks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    list_id: str | None = None
    unsubscribe_mailto: str | None = None
    name_fallback: str = "reader"
    # sending
    transport: str = "outbox://outbox"
    database: str = "newsletter.db"
    busy_timeout: float = 30.0  # how long a send waits for another program holding the database
    reviewers: tuple[str, ...] = ()
    connections: int = 4
    rate_per_second: float = 0.0
    rate_per_hour: int = 0
    rate_per_day: int = 0
    batch_size: int = 0  # 0 = the transport's own default
    retry_base: float = 60.0
    retry_max_wait: float = 120.0  # how long one run waits for deferred recipients
    give_up_after: float = 3 * 86400.0
    max_consecutive_errors: int = 25
    timeout: float = 30.0
    ca_file: str | None = None
    # scheduling
    late_window: float = 6 * 3600.0
    require_approval: bool = False
    log_file: str | None = None
    # the sign-up form and the preferences page
    signup_lists: tuple[str, ...] = ()  # the lists people may choose; none: no form
    signup_consent_text: str = DEFAULT_CONSENT
    signup_languages: tuple[str, ...] = ()  # offered on the form and the preferences page
    signup_token_lifetime: float = 7 * 86400.0  # how long a confirmation link works
    signup_mail_interval: float = 86400.0  # at most one confirmation mail per address
    signup_per_client_per_hour: int = 20  # sign-ups from one client address; 0: no limit
    signup_client_ip_header: str | None = None  # e.g. X-Real-IP, set by the reverse proxy
    signup_record_client_ip: bool = False  # keep the client address in consent records
    signup_proof_of_work: bool = False  # an ALTCHA challenge the browser solves
    signup_proof_of_work_max: int = 50000  # ALTCHA's maxnumber: the work, on average half
    signup_welcome: bool = False  # a welcome message after confirming
    signup_embed_origins: tuple[str, ...] = ()  # sites whose pages carry `newsletter form`
    # DKIM
    dkim_selector: str | None = None
    dkim_key_file: str | None = None
    dkim_domain: str | None = None
    dkim_ed25519_selector: str | None = None  # a second signature, RFC 8463
    dkim_ed25519_key_file: str | None = None
    # bounces and complaints
    return_path: str | None = None  # bounces@domain: the envelope sender, as bounces+TOKEN@
    soft_bounce_limit: int = 3  # soft bounces on this many ...
    soft_bounce_sends: int = 5  # ... of an address's last sends make it bounced
    imap: str | None = None  # imaps://user@host/FOLDER, read by `bounces fetch`
    processed_folder: str = "Processed"
    review_folder: str = "Review"
    keep_dir: str = "bounces"  # where `bounces receive` keeps mail it did not record
    webhook_max_age: float = 900.0  # a signed webhook older than this is a replay
    postmark_user: str = "postmark"
    sendgrid_public_key: str | None = None
    sns_topics: tuple[str, ...] = ()  # the SNS TopicArns SES notifies: /webhooks/ses trusts these
    env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def fallback_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.language_fallbacks)

    @property
    def sender_address(self) -> str:
        from email.utils import parseaddr  # 6 ms to import: only for the commands that need it

        return parseaddr(self.sender)[1]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    @property
    def list_id_value(self) -> str:
        """RFC 2919 List-Id: a phrase and a dot-atom identifier unique to this newsletter."""
        if self.list_id:
            return self.list_id
        slug = re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-") or "newsletter"
        return f"{self.name} <{slug}.{self.sender_domain}>"

    def path(self, value: str) -> Path:
        """A path setting, relative to the folder of newsletter.toml."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def database_path(self) -> Path:
        return self.path(self.env.get("NEWSLETTER_DB") or self.database)

    def template_dir(self, name: str | None = None) -> Path:
        """A template folder: a bundled theme by name, or a folder of the user's own."""
        chosen = name or self.template
        own = self.path(chosen)
        if own.is_dir():
            return own
        for base in (self.root / "templates", bundled_templates()):
            if (base / chosen).is_dir():
                return base / chosen
        raise ConfigError(f"template {chosen!r}: no such folder (looked in {own}, "
                          f"{self.root / 'templates'} and {bundled_templates()})")


# Sections of newsletter.toml and the Settings field each key fills.
SECTIONS: dict[str, dict[str, str]] = {
    "newsletter": {k: k for k in ("name", "sender", "reply_to", "postal_address", "base_url",
                                  "template", "language", "language_fallbacks", "list_id",
                                  "unsubscribe_mailto", "name_fallback")},
    "send": {k: k for k in ("transport", "database", "reviewers", "connections",
                            "rate_per_second", "rate_per_hour", "rate_per_day", "batch_size",
                            "retry_base", "retry_max_wait", "give_up_after",
                            "max_consecutive_errors", "timeout", "ca_file", "busy_timeout")},
    "schedule": {k: k for k in ("late_window", "require_approval", "log_file")},
    "dkim": {"selector": "dkim_selector", "key_file": "dkim_key_file", "domain": "dkim_domain",
             "ed25519_selector": "dkim_ed25519_selector",
             "ed25519_key_file": "dkim_ed25519_key_file"},
    "signup": {k: f"signup_{k}" for k in (
        "lists", "consent_text", "languages", "token_lifetime", "mail_interval",
        "per_client_per_hour", "client_ip_header", "record_client_ip", "proof_of_work",
        "proof_of_work_max", "welcome", "embed_origins")},
    "bounces": {k: k for k in ("return_path", "soft_bounce_limit", "soft_bounce_sends", "imap",
                               "processed_folder", "review_folder", "keep_dir",
                               "webhook_max_age", "postmark_user", "sendgrid_public_key",
                               "sns_topics")},
}
DURATIONS = {"retry_base", "retry_max_wait", "give_up_after", "late_window", "timeout",
             "webhook_max_age", "busy_timeout", "signup_token_lifetime",
             "signup_mail_interval"}


def bundled_templates() -> Path:
    """The templates shipped with the program (the repository's templates/ folder)."""
    return Path(__file__).resolve().parent.parent / "templates"


def find_config(start: Path) -> Path | None:
    """The nearest newsletter.toml in `start` or a parent folder."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: Path | None = None, near: Path | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Read settings from `config`, else the newsletter.toml nearest to `near` or the cwd."""
    env = dict(os.environ if env is None else env)
    if config is None and env.get("NEWSLETTER_CONFIG"):
        config = Path(env["NEWSLETTER_CONFIG"])
    if config is None:
        base = near.parent if near is not None and near.is_file() else (near or Path.cwd())
        config = find_config(base) or find_config(Path.cwd())
    if config is None:
        return _with_env(Settings(root=Path.cwd(), source=None), env)
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{config}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_problem(config, str(exc))) from None
    values = _flatten(config, data)
    return _with_env(Settings(root=config.resolve().parent, source=config, **values), env)


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_problem(config: Path, message: str) -> str:
    """`newsletter.toml:3: what to do` for the common mistakes, TOML's own words after."""
    where = _TOML_WHERE.search(message)
    if where is None:
        return f"{config}: {message}"
    number, detail = int(where.group(1)), message[:where.start()]
    try:
        line = config.read_text(encoding="utf-8").splitlines()[number - 1]
    except (OSError, UnicodeDecodeError, IndexError):
        line = ""
    key, equals, value = line.partition("=")
    value = value.strip()
    if detail.startswith("Illegal character '\\n'") or detail.startswith("Unterminated string"):
        plain = "this quoted value is never closed: add the closing quote"
    elif detail.startswith("Invalid value") and equals and value[:1] not in "\"'[{":
        plain = f"put the text in double quotes: {key.strip()} = \"{value}\""
    elif detail.startswith("Expected '=' after a key") and ":" in line:
        plain = "write key = value (TOML uses '=', not ':')"
    else:
        plain = detail
    return f"{config}:{number}: {plain}" + (f" (TOML: {detail})" if plain != detail else "")


def _with_env(settings: Settings, env: dict[str, str]) -> Settings:
    values = {f.name: getattr(settings, f.name) for f in fields(settings)}
    values["env"] = env
    if env.get("NEWSLETTER_TRANSPORT"):
        values["transport"] = env["NEWSLETTER_TRANSPORT"]
    return Settings(**values)


def _flatten(config: Path, data: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Settings)}
    for section, content in data.items():
        keys = SECTIONS.get(section)
        if keys is None or not isinstance(content, dict):
            problems.append(f"{config}: [{section}]: unknown section; expected one of: "
                            + ", ".join(SECTIONS))
            continue
        for key, value in content.items():
            name = keys.get(key)
            if name is None:
                problems.append(f"{config}: {section}.{key}: unknown setting; expected one of: "
                                + ", ".join(keys))
                continue
            try:
                values[name] = _coerce(name, str(types[name]), value)
            except ValueError as exc:
                problems.append(f"{config}: {section}.{key}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems))
    return values


def _coerce(name: str, kind: str, value: Any) -> Any:
    if name in DURATIONS:
        return parse_duration(value)
    if name == "language_fallbacks":
        return _fallbacks(value)
    if name == "return_path" and not (isinstance(value, str) and RETURN_PATH.match(value)):
        raise ValueError(f"expected an address such as bounces@news.example.org, without '+' "
                         f"(the program adds +TOKEN to it), got {value!r}")
    if name == "sns_topics" and not (isinstance(value, list) and all(
            isinstance(v, str) and TOPIC_ARN.match(v) for v in value)):
        raise ValueError("expected a list of SNS topic ARNs, such as [\"arn:aws:sns:eu-west-1:"
                         f"123456789012:newsletter-bounces\"], got {value!r}")
    if kind.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        if name == "signup_languages" and (wrong := [v for v in value
                                                     if not LANGUAGE.match(v)]):
            raise ValueError(f"{', '.join(map(repr, wrong))}: expected language codes such as "
                             "[\"en\", \"fr\", \"fr-BE\"], one string each")
        return tuple(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"expected a whole number >= 0, got {value!r}")
        return value
    if kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"expected a number >= 0, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _fallbacks(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`{ lb = ["fr", "de"], "fr-CA" = "fr" }`: a language, and what its readers read."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a table such as {{ lb = [\"fr\", \"de\"] }}, got {value!r}")
    pairs = []
    for language, others in value.items():
        others = [others] if isinstance(others, str) else others
        if not isinstance(others, list) or not all(isinstance(o, str) for o in others):
            raise ValueError(f"{language}: expected a language or a list of languages, "
                             f"got {others!r}")
        pairs.append((language, tuple(others)))
    return tuple(pairs)


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"15m"`, `"6h"` or `"3d"`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 90s, 15m, 6h or 3d, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]
