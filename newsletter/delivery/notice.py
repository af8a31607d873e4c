"""Transactional notices: the confirmation mail of a sign-up and the welcome after it.

Each notice is rendered from the theme's `signup/` templates once per kind and language
(the person's choice on the form, else the newsletter's), with the theme's words from the
catalogs (a theme's `signup/confirm.fr.txt.j2` wins over them for French), and with
`%%placeholders%%` for the person's values (name, confirm_url...), like an issue, so
that every transport sends it: SMTP gets its own small MIME message, mail-service APIs the
template and the values. A notice carries no List-* headers: it is one message to one
person, not a mailing. Date and Message-ID are per message (the server runs for months).
"""

from __future__ import annotations

import datetime as dt
import secrets
from email.header import Header
from email.utils import format_datetime, getaddresses, parseaddr
from functools import cache
from typing import Any

import jinja2

from ..compose import i18n
from ..config import Settings, bundled_templates
from ..envelope import Personalised, Recipient
from ..errors import ConfigError
from .message import EncodedPart, address_header, check_header_value
from .signing import DkimSigner

KINDS = ("confirm", "welcome")


class Notice:
    """One kind of notice in one language: a MessageSource for the transports."""

    def __init__(self, settings: Settings, subject: str, text: str, html: str,
                 dkim: DkimSigner | None, name_fallback: str = "") -> None:
        self.settings, self.dkim = settings, dkim
        self.name_fallback = name_fallback or settings.name_fallback  # in the notice's language
        self.subject = check_header_value(subject.strip(), "notice subject")
        self.text_template, self.html_template = text, html
        self.parts = (EncodedPart("text/plain", text, {}, escape=False),
                      EncodedPart("text/html", html, {}, escape=True))
        self.boundary = "=_nl_" + secrets.token_hex(12)
        name, address = parseaddr(check_header_value(settings.sender, "newsletter.toml sender"))
        self.common_headers = {"From": address_header(name, address, "newsletter.toml sender"),
                               "Subject": self.subject}
        if settings.reply_to:
            check_header_value(settings.reply_to, "newsletter.toml reply_to")
            self.common_headers["Reply-To"] = ", ".join(
                address_header(n, a, "newsletter.toml reply_to")
                for n, a in getaddresses([settings.reply_to]))
        self.common_headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def reply_to(self) -> str | None:
        return self.settings.reply_to

    def personalise(self, recipient: Recipient, values: dict[str, str]) -> Personalised:
        message_id = f"<notice.{secrets.token_hex(10)}@{self.settings.sender_domain}>"
        headers = {"To": address_header(recipient.name, recipient.email,
                                        f"subscriber {recipient.email!r}"),
                   "Message-ID": message_id,
                   "Date": format_datetime(dt.datetime.now(dt.UTC))}
        return Personalised(recipient, message_id, {"name": recipient.name or
                                                    self.name_fallback, **values},
                            headers, self)

    def wire_bytes(self, message: Personalised) -> bytes:
        subject = self.subject if self.subject.isascii() else Header(
            self.subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        lines = [f"{name}: {subject if name == 'Subject' else value}"
                 for name, value in self.common_headers.items()]
        lines += [f"{name}: {value}" for name, value in message.headers.items()]
        lines += ["MIME-Version: 1.0",
                  f"Content-Type: multipart/alternative; boundary=\"{self.boundary}\""]
        out = [("\r\n".join(lines) + "\r\n").encode("utf-8")]
        boundary = self.boundary.encode("ascii")
        for part in self.parts:
            out.append(b"\r\n--" + boundary + b"\r\n")
            part.render(message.values, out)
        out.append(b"\r\n--" + boundary + b"--\r\n")
        data = b"".join(out)
        return self.dkim.sign(data) if self.dkim is not None else data


class Notices:
    """The notices of the configured theme, each composed on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dkim = DkimSigner.from_settings(settings)
        self.catalogs = [settings.template_dir(), bundled_templates()]
        folders = [settings.template_dir() / "signup", bundled_templates() / "default" / "signup"]
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
            autoescape=jinja2.select_autoescape(["html.j2"]), undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        i18n.install(self.env)
        self.get = cache(self._compose)

    def _compose(self, kind: str, language: str) -> Notice:
        """`language`: the one chosen on the form, "" for none (then the newsletter's)."""
        if kind not in KINDS:
            raise ValueError(kind)
        language = language or self.settings.language
        lang = i18n.written_in(self.catalogs, [language], self.settings.fallback_map)
        words = i18n.translations(self.catalogs, lang)
        context: dict[str, Any] = {
            "newsletter": self.settings, "language": language, "lang": lang,
            "dir": i18n.direction(lang), "translations": words,
            "lifetime_days": round(self.settings.signup_token_lifetime / 86400),
            **{name: f"%%{name}%%" for name in ("name", "confirm_url", "preferences_url",
                                                "lists")}}
        try:
            text = self._template(kind, language, "txt").make_module(context)
            page = self._template(kind, language, "html").render(context)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"signup/{kind} template: {exc}") from None
        return Notice(self.settings, str(getattr(text, "subject", self.settings.name)),
                      str(text), page, self.dkim, words.gettext(self.settings.name_fallback))

    def _template(self, kind: str, language: str, part: str) -> jinja2.Template:
        """signup/confirm.fr.txt.j2 for a subscriber in French, else signup/confirm.txt.j2."""
        return self.env.select_template([f"{kind}.{language}.{part}.j2", f"{kind}.{part}.j2"])
