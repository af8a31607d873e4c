"""Messages: one issue composed once, personalised per recipient into exact wire bytes.

Every recipient's message must parse, carry that recipient's own name and links and no one
else's, and keep to the syntax receivers check: header formats, CRLF lines under 998
octets, quoted-printable lines of 76, no line a mail server would take for the end of DATA.
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import email
import html
import re
from email import headerregistry, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from conftest import REPO

from newsletter.audience.tokens import TEST_SUBSCRIBER_ID, Signer
from newsletter.compose.issue import Issue, load_issue
from newsletter.compose.render import ComposedEmail, compose
from newsletter.config import Settings, load_settings
from newsletter.delivery.message import MessageFactory, address_header
from newsletter.delivery.signing import SIGNED_HEADERS, DkimSigner
from newsletter.envelope import Recipient
from newsletter.errors import ConfigError, HeaderInjectionError

SAMPLE = REPO / "issues" / "2020-01.yaml"
SIGNER = Signer(b"a-secret-for-the-message-tests")
DATE = dt.datetime(2020, 1, 10, 8, 30, tzinfo=dt.UTC)
MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LIST_ID = re.compile(rf"(?:.+ )?<{ATOM}(?:\.{ATOM})+>")
LINE_BREAKS = ["\r", "\n", "\r\n", "\x00", "\u2028", "\u2029"]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env={})


@pytest.fixture(scope="module")
def sample(settings: Settings) -> ComposedEmail:
    return compose(load_issue(SAMPLE, "issues/2020-01.yaml"), settings)


def factory(composed: ComposedEmail, settings: Settings, send_key: str = "send-1",
            **kwargs: object) -> MessageFactory:
    return MessageFactory(composed, settings, SIGNER, send_key=send_key, date=DATE,
                          **kwargs)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """The decoded text and HTML parts."""
    text, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html_part is not None
    return text.get_content(), html_part.get_content()


def display_name(data: bytes) -> str:
    """The To header's display name as RFC 2047 reads it.

    Python's address parser keeps the folding space between two adjacent encoded-words
    (RFC 2047 section 6.2 says to drop it), so names in encoded-words are decoded with the
    RFC 2047 decoder from the raw header instead.
    """
    raw = email.message_from_bytes(data, policy=policy.compat32)["To"]
    phrase = re.sub(r"\r?\n[ \t]", " ", raw).rpartition(" <")[0]
    if "=?" in phrase:
        return str(make_header(decode_header(phrase)))
    return parse(data)["To"].addresses[0].display_name


def composed_with(text: str, html_body: str, subject: str = "January news",
                  *, test: bool = False) -> ComposedEmail:
    issue = Issue(slug="2020-01", date=dt.date(2020, 1, 10), subject=subject, preheader="",
                  source=Path("issues/2020-01.yaml"))
    return ComposedEmail(issue, subject, "", html_body, text, REPO / "templates" / "default",
                         test)


ALICE = Recipient(41, "alice@example.org", "Alice Martin", "members")
BOB = Recipient(42, "bob@example.org", "Bob", "members")


# --- structure -------------------------------------------------------------------------------

def test_message_is_multipart_alternative_text_first_then_html(sample: ComposedEmail,
                                                               settings: Settings) -> None:
    message = parse(factory(sample, settings).personalise(ALICE).data)
    assert message.get_content_type() == "multipart/alternative"
    assert message["MIME-Version"] == "1.0"
    body = list(message.iter_parts())
    assert [p.get_content_type() for p in body] == ["text/plain", "text/html"]
    for part in body:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert not message.defects and not any(p.defects for p in body)


def test_sample_issue_carries_the_recipients_name_and_links(sample: ComposedEmail,
                                                            settings: Settings) -> None:
    personalised = factory(sample, settings).personalise(ALICE)
    text, html_part = parts(parse(personalised.data))
    unsubscribe = personalised.values["unsubscribe_url"]
    assert unsubscribe.startswith("https://newsletter.efus.eu/unsubscribe/")
    assert "Dear Alice Martin," in text and "Dear Alice Martin," in html_part
    assert unsubscribe in text and f'href="{unsubscribe}"' in html_part
    assert "https://newsletter.efus.eu/2020-01/" in text
    assert 'href="https://newsletter.efus.eu/2020-01/"' in html_part
    assert "%%" not in text and "%%" not in html_part


def test_every_line_is_crlf_short_and_never_starts_with_a_dot(sample: ComposedEmail,
                                                              settings: Settings) -> None:
    text = "\n".join([".starts with a dot", "." * 300, "é" * 200, "tab\t" * 40 + " ",
                      "=" * 100, "x" * 74 + " ", "%%name%%", ".%%name%%.", "end"])
    composed = composed_with(text, "<p>" + "&amp; " * 400 + "</p>\n." + "%%name%%" * 30)
    names = ["", ".", ".leading dot", "é" * 90, "x " * 60, "=" * 50]
    build = factory(composed, settings)
    for data in [build.personalise(dataclasses.replace(ALICE, name=name)).data
                 for name in names] + [factory(sample, settings).personalise(ALICE).data]:
        assert data.isascii()
        assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in \
            data.replace(b"\r\n", b"")
        header, _, body = data.partition(b"\r\n\r\n")
        for line in data.split(b"\r\n"):
            assert len(line) < 998
            assert not line.startswith(b".")
        for line in body.split(b"\r\n"):  # RFC 2045 (SpamAssassin's MIME_QP_LONG_LINE)
            assert len(line) <= 76, line


# --- headers ---------------------------------------------------------------------------------

def test_headers_have_the_syntax_receivers_check(sample: ComposedEmail,
                                                 settings: Settings) -> None:
    message = parse(factory(sample, settings).personalise(ALICE).data)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
                 "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type"):
        assert len(message.get_all(name, [])) == 1, name
    sender = message["From"]
    assert isinstance(sender, headerregistry.AddressHeader)
    assert sender.addresses[0].display_name == "Efus Newsletter"
    assert sender.addresses[0].addr_spec == "newsletter@efus.eu"
    to = message["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == ("Alice Martin", "alice@example.org")
    assert message["Reply-To"].addresses[0].addr_spec == "contact@efus.eu"
    assert message["Subject"] == sample.subject
    assert isinstance(message["Date"], headerregistry.DateHeader)
    assert parsedate_to_datetime(str(message["Date"])) == DATE
    assert MESSAGE_ID.fullmatch(message["Message-ID"])
    assert message["Message-ID"].endswith("@efus.eu>")
    assert LIST_ID.fullmatch(message["List-Id"])
    assert message["List-Id"] == "Efus Newsletter <newsletter.efus.eu>"
    links = re.findall(r"<([^<>]+)>", message["List-Unsubscribe"])
    assert len(links) == 2
    assert links[0].startswith("https://newsletter.efus.eu/unsubscribe/")
    assert links[1].startswith("mailto:unsubscribe@efus.eu?subject=unsubscribe%20")
    assert re.fullmatch(r"<[^<>]+>,\s*<[^<>]+>", message["List-Unsubscribe"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_carries_the_same_token_as_the_body(sample: ComposedEmail,
                                                             settings: Settings) -> None:
    personalised = factory(sample, settings).personalise(ALICE)
    message = parse(personalised.data)
    https, mailto = re.findall(r"<([^<>]+)>", message["List-Unsubscribe"])
    token = https.rpartition("/")[2]
    assert https == personalised.values["unsubscribe_url"]
    assert mailto.endswith(token)
    verified = SIGNER.verify_unsubscribe(token)
    assert verified is not None
    assert (verified.subscriber_id, verified.list_name) == (41, "members")


def test_reply_to_and_mailto_only_when_configured(sample: ComposedEmail,
                                                  settings: Settings) -> None:
    bare = dataclasses.replace(settings, reply_to=None, unsubscribe_mailto=None)
    message = parse(factory(sample, bare).personalise(ALICE).data)
    assert "Reply-To" not in message
    assert re.fullmatch(r"<https://[^<>]+>", message["List-Unsubscribe"])


def test_default_list_id_is_a_dot_atom_from_the_name_and_domain(sample: ComposedEmail,
                                                                settings: Settings) -> None:
    plain = dataclasses.replace(settings, list_id=None, name="Efus: Ville & Cité")
    message = parse(factory(sample, plain).personalise(ALICE).data)
    assert LIST_ID.fullmatch(message["List-Id"])
    assert message["List-Id"].endswith("<efus-ville-cit.efus.eu>")


@pytest.mark.parametrize("list_id", ["Efus <newsletter efus eu>", "newsletter",
                                     "Efus <news@efus.eu>"])
def test_list_id_that_is_not_a_dot_atom_is_refused(sample: ComposedEmail, settings: Settings,
                                                   list_id: str) -> None:
    with pytest.raises(ConfigError, match="newsletter.toml list_id.*RFC 2919"):
        factory(sample, dataclasses.replace(settings, list_id=list_id))


def test_non_ascii_subject_is_encoded_and_decodes(settings: Settings) -> None:
    subject = "Liège, Riga & Nice : « sécurité » en 2020 – " + "très " * 30
    composed = composed_with("Hello %%name%%\n", "<p>Hello %%name%%</p>", subject)
    data = factory(composed, settings).personalise(ALICE).data
    assert data.isascii()
    assert parse(data)["Subject"] == subject


def test_long_ascii_subject_is_kept_under_998_octets(settings: Settings) -> None:
    subject = "word " * 300
    composed = composed_with("Hello\n", "<p>Hello</p>", subject.strip())
    data = factory(composed, settings).personalise(ALICE).data
    assert all(len(line) < 998 for line in data.split(b"\r\n"))
    assert parse(data)["Subject"] == subject.strip()


@pytest.mark.parametrize("name", ["Zoë Müller, PhD", "Łukasz Żółć, Jr., Ph.D.",
                                  "Dupont, Jean-Rémi (Mairie de Liège)", "李, 小龙",
                                  "O'Neil, \"Sam\"", "Ann, B. <and> C", "Émilie " * 20])
def test_display_names_with_commas_and_non_ascii_round_trip_through_to(
        sample: ComposedEmail, settings: Settings, name: str) -> None:
    recipient = Recipient(7, "someone@example.org", name.strip(), "members")
    data = factory(sample, settings).personalise(recipient).data
    addresses = parse(data)["To"].addresses
    assert len(addresses) == 1  # the comma did not make a second recipient
    assert addresses[0].addr_spec == "someone@example.org"
    assert not parse(data)["To"].defects
    assert display_name(data) == name.strip()
    if len(name) < 30:  # one encoded-word: Python's own parser agrees
        assert addresses[0].display_name == name.strip()


def test_recipient_without_a_name_gets_a_bare_address_and_the_fallback_greeting(
        sample: ComposedEmail, settings: Settings) -> None:
    message = parse(factory(sample, settings).personalise(
        Recipient(9, "anon@example.org", "", "members")).data)
    assert message["To"] == "anon@example.org"
    assert "Dear reader," in parts(message)[0]


# --- Message-ID --------------------------------------------------------------------------

def test_message_id_is_stable_for_a_retry_of_the_same_send(sample: ComposedEmail,
                                                           settings: Settings) -> None:
    first = factory(sample, settings, "send-1").personalise(ALICE).message_id
    retry = factory(sample, settings, "send-1").personalise(ALICE).message_id  # new process
    assert first == retry
    assert MESSAGE_ID.fullmatch(first)


def test_message_id_differs_per_subscriber_and_per_send(sample: ComposedEmail,
                                                        settings: Settings) -> None:
    build = factory(sample, settings, "send-1")
    ids = {build.personalise(Recipient(n, f"r{n}@example.org")).message_id
           for n in range(1, 501)}
    assert len(ids) == 500
    assert factory(sample, settings, "send-2").personalise(ALICE).message_id != \
        build.personalise(ALICE).message_id


def test_a_retry_carries_the_message_id_of_the_first_attempt(sample: ComposedEmail,
                                                             settings: Settings) -> None:
    first = factory(sample, settings, "send-1").personalise(ALICE)
    retry = factory(sample, settings, "send-1").personalise(ALICE)  # a later run, same send
    assert retry.message_id == first.message_id
    assert parse(retry.data)["Message-ID"] == first.message_id


# --- the quoted-printable placeholder trap -----------------------------------------------

def trap_email(test: bool = False) -> ComposedEmail:
    """Placeholders at every column from 50 to 80: some straddle QP's 76-column soft break."""
    text_lines, html_lines = [], []
    for column in range(50, 81):
        text_lines.append("t" * column + "%%unsubscribe_url%% for %%name%% in %%city%%.")
        text_lines.append("n" * column + "%%name%%" + "!" * (column % 7))
        html_lines.append(f'<p>{"h" * column}<a href="%%unsubscribe_url%%">%%name%%</a></p>')
        html_lines.append(f"<p>{'é' * (column // 2)}%%name%% &amp; %%city%%</p>")
    text = "\n".join(text_lines) + "\nView it online: %%web_url%%\n"
    return composed_with(text, "\n".join(html_lines) + "\n", test=test)


def trap_recipients(count: int) -> list[Recipient]:
    """Unique names of many lengths with HTML specials, commas and non-ASCII letters."""
    specials = ["", " & Co", " <b>", ", Jr.", " “Quoted”", " Ñoño", ' "&lt;"', " a&b<c>d"]
    return [Recipient(1000 + n, f"r{n}@example.org",
                      f"R{n:03d}" + "x" * (n * 7 % 60) + specials[n % len(specials)],
                      "members", {"city": f"City{n:03d} & <Region>"})
            for n in range(count)]


def test_the_trap_is_real_a_naive_replace_would_miss_placeholders() -> None:
    composed = trap_email()
    encoded = binascii.b2a_qp(composed.text.encode("utf-8"), istext=True)
    placeholders = composed.text.count("%%unsubscribe_url%%")
    assert encoded.count(b"%%unsubscribe_url%%") < placeholders  # some were cut `%%UN=\nSUB`


def test_every_recipient_gets_their_own_values_and_no_one_elses(settings: Settings) -> None:
    build = factory(trap_email(), settings)
    recipients = trap_recipients(120)
    messages = [build.personalise(r) for r in recipients]
    tokens = [m.values["unsubscribe_url"].rpartition("/")[2] for m in messages]
    assert len(set(tokens)) == len(recipients)
    for index, (recipient, personalised) in enumerate(zip(recipients, messages, strict=True)):
        message = parse(personalised.data)
        assert not message.defects
        text, html_part = parts(message)
        city = recipient.fields["city"]
        url = personalised.values["unsubscribe_url"]
        assert "%%" not in text and "%%" not in html_part
        # text: raw values, each placeholder filled at every column it was written at
        assert text.count(url) == 31
        assert text.count(recipient.name) == 62
        assert text.count(f"for {recipient.name} in {city}.") == 31
        assert "View it online: https://newsletter.efus.eu/2020-01/" in text
        # HTML: the same values, escaped
        escaped = html.escape(recipient.name)
        assert html_part.count(f'<a href="{url}">{escaped}</a>') == 31
        assert html_part.count(f"{escaped} &amp; {html.escape(city)}</p>") == 31
        if escaped != recipient.name:
            assert recipient.name not in html_part
        # nobody else's name, link or city
        for other in range(len(recipients)):
            if other != index:
                assert tokens[other] not in text and tokens[other] not in html_part
                assert f"R{other:03d}" not in text and f"City{other:03d}" not in text
                assert f"R{other:03d}" not in html_part
        assert display_name(personalised.data) == recipient.name
        verified = SIGNER.verify_unsubscribe(tokens[index])
        assert verified is not None and verified.subscriber_id == recipient.subscriber_id


def test_values_that_look_like_placeholders_stay_literal(settings: Settings) -> None:
    build = factory(trap_email(), settings)
    sneaky = Recipient(7, "s@example.org", "%%unsubscribe_url%%", "members",
                       {"city": "%%name%% %%web_url%%"})
    text, html_part = parts(parse(build.personalise(sneaky).data))
    assert text.count("%%unsubscribe_url%%") == 62  # the name, written as is
    assert text.count("%%name%% %%web_url%%") == 31  # the city, not expanded
    assert "%%unsubscribe_url%%" in html_part


def test_test_sends_carry_the_harmless_unsubscribe_token(settings: Settings) -> None:
    build = factory(trap_email(test=True), settings)
    first, second = (build.personalise(r) for r in trap_recipients(2))
    token = first.values["unsubscribe_url"].rpartition("/")[2]
    verified = SIGNER.verify_unsubscribe(token)
    assert verified is not None
    assert (verified.subscriber_id, verified.list_name) == (TEST_SUBSCRIBER_ID, "__test__")
    assert first.message_id != second.message_id  # each test copy is a new message
    assert MESSAGE_ID.fullmatch(first.message_id)


# --- header injection --------------------------------------------------------------------

@pytest.mark.parametrize("bad", LINE_BREAKS)
def test_line_break_in_the_issue_subject_is_refused(settings: Settings, bad: str) -> None:
    composed = composed_with("x\n", "<p>x</p>", f"January{bad}Bcc: victim@example.org")
    with pytest.raises(HeaderInjectionError, match="^issue subject: contains a line break"):
        factory(composed, settings)


@pytest.mark.parametrize("bad", LINE_BREAKS)
def test_line_break_in_a_display_name_is_refused(sample: ComposedEmail, settings: Settings,
                                                 bad: str) -> None:
    recipient = Recipient(5, "eve@example.org", f"Eve{bad}Bcc: victim@example.org", "members")
    with pytest.raises(HeaderInjectionError,
                       match="^subscriber 'eve@example.org' name: contains a line break"):
        factory(sample, settings).personalise(recipient)


@pytest.mark.parametrize("bad", LINE_BREAKS)
def test_line_break_in_a_recipient_address_is_refused(sample: ComposedEmail,
                                                      settings: Settings, bad: str) -> None:
    recipient = Recipient(5, f"eve@example.org{bad}Bcc: victim@example.org", "Eve", "members")
    with pytest.raises(HeaderInjectionError, match="address: contains a line break"):
        factory(sample, settings).personalise(recipient)


@pytest.mark.parametrize("bad", LINE_BREAKS)
@pytest.mark.parametrize(("setting", "value"), [
    ("sender", "Efus{}Bcc: victim@example.org <newsletter@efus.eu>"),
    ("reply_to", "contact@efus.eu{}Bcc: victim@example.org"),
    ("list_id", "Efus <newsletter.efus.eu>{}Bcc: victim@example.org"),
])
def test_line_break_in_a_setting_is_refused_naming_it(sample: ComposedEmail, settings: Settings,
                                                      setting: str, value: str,
                                                      bad: str) -> None:
    bad_settings = dataclasses.replace(settings, **{setting: value.format(bad)})
    with pytest.raises(HeaderInjectionError,
                       match=f"^newsletter.toml {setting}: contains a line break"):
        factory(sample, bad_settings)


def test_injection_error_shows_the_value_escaped(sample: ComposedEmail,
                                                 settings: Settings) -> None:
    recipient = Recipient(5, "eve@example.org", "Eve\r\nBcc: x@example.org", "members")
    with pytest.raises(HeaderInjectionError) as caught:
        factory(sample, settings).personalise(recipient)
    assert "'Eve\\r\\nBcc: x@example.org'" in str(caught.value)
    assert "\n" not in str(caught.value)  # the error message itself stays one line


def test_a_non_ascii_domain_goes_out_in_idna_form(sample: ComposedEmail,
                                                 settings: Settings) -> None:
    message = factory(sample, settings).personalise(Recipient(5, "ana@bücher.example", "Ana"))
    assert message.recipient.email == "ana@xn--bcher-kva.example"
    assert not message.needs_smtputf8
    assert message.headers["To"] == "Ana <ana@xn--bcher-kva.example>"
    message.data.decode("ascii")


def test_a_non_ascii_local_part_needs_smtputf8(sample: ComposedEmail,
                                               settings: Settings) -> None:
    message = factory(sample, settings).personalise(Recipient(5, "zoë@example.org", "Zoë"))
    assert message.needs_smtputf8
    assert message.headers["To"] == "=?utf-8?q?Zo=C3=AB?= <zoë@example.org>"
    with pytest.raises(HeaderInjectionError, match="non-ASCII addresses need SMTPUTF8"):
        address_header("Zoë", "zoë@example.org", "reply_to")


@pytest.mark.parametrize("name", [
    "Maximiliane Oberholzer-Lindqvist von und zu Hohenzollern-Sigmaringen, Direktorin",
    "Zoë Müller-Lüdenscheidt, Directrice générale adjointe de la sécurité urbaine de Nice",
])
def test_the_to_header_is_folded_at_spaces_within_78_characters(
        sample: ComposedEmail, settings: Settings, name: str) -> None:
    data = factory(sample, settings).personalise(
        Recipient(5, "maximiliane.oberholzer@municipality.example.org", name)).data
    header = re.search(rb"\r\nTo: (.*?)\r\n(?=\S)", data, re.S).group(0)  # type: ignore[union-attr]
    lines = header.decode("ascii").strip("\r\n").split("\r\n")
    assert len(lines) > 1 and all(len(line) <= 78 for line in lines), lines
    assert all(line.startswith(" ") for line in lines[1:])
    unfolded = header.decode("ascii").strip("\r\n").removeprefix("To: ").replace("\r\n", "")
    shown = str(make_header(decode_header(unfolded)))  # RFC 2047, as mail clients read it
    assert shown.replace('"', "") == f"{name} <maximiliane.oberholzer@municipality.example.org>"


# --- DKIM --------------------------------------------------------------------------------

def test_dkim_signature_is_added_last_and_verifies(sample: ComposedEmail, settings: Settings,
                                                   dkim_key: tuple[Path, bytes]) -> None:
    import dkim

    key_file, record = dkim_key
    with_dkim = dataclasses.replace(settings, dkim_selector="nl2020", dkim_key_file=str(key_file))
    signer = DkimSigner.from_settings(with_dkim)
    assert signer is not None
    data = factory(sample, with_dkim, dkim=signer).personalise(ALICE).data
    assert data.startswith(b"DKIM-Signature: ")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2020._domainkey.efus.eu."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    signature = parse(data)["DKIM-Signature"]
    tags = dict(t.strip().split("=", 1) for t in signature.split(";") if "=" in t)
    signed = {h.strip().lower() for h in tags["h"].split(":")}
    assert {"from", "subject", "date", "message-id", "list-id", "list-unsubscribe",
            "list-unsubscribe-post"} <= signed
    assert tags["d"] == "efus.eu" and tags["s"] == "nl2020"
    assert {h.decode().lower() for h in SIGNED_HEADERS} >= signed
    tampered = data.replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)



def test_non_ascii_names_are_encoded_word_for_word_as_the_email_package_does() -> None:
    from email.header import Header, decode_header, make_header

    from newsletter.delivery.message import _encoded_word, address_header

    names = ["Zoë Müller", "Łukasz Żółć", "李小龙", "Müller, Zoë", "Ωμέγα Αλφα Βήτα", "😀 smile",
             "x" * 40 + "é", "é" * 21, "é" * 22, "é" * 60, "Jean-Rémi \"JR\" Dupont"]
    fast = 0
    for name in names:
        word = _encoded_word(name)  # the quick path: exactly what the email package writes
        if word is not None:
            fast += 1
            assert word == Header(name, "utf-8").encode(), name
        value = address_header(name, "a@example.org", "test")
        assert str(make_header(decode_header(value.replace("\r\n", "")))) == \
            f"{name} <a@example.org>", name
        assert all(len(line) <= 78 for line in f"To: {value}".split("\r\n")), name
    assert fast >= 8
