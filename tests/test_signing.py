"""DKIM signing with OpenSSL: the same bytes as dkimpy, verified by dkimpy, refused if altered.

dkimpy is the reference here: for the same key, message, header list and time it must
write the very same DKIM-Signature fields (RSA PKCS#1 v1.5 and Ed25519 are deterministic),
over a corpus of messages from the message factory and of awkward hand-made ones, with
both canonicalisations; and it must verify every signature.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import subprocess
from pathlib import Path

import dkim
import pytest
from conftest import REPO
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed

from newsletter.audience.tokens import Signer
from newsletter.compose.issue import load_issue
from newsletter.compose.render import ComposedEmail, compose
from newsletter.config import Settings, load_settings
from newsletter.delivery.message import MessageFactory
from newsletter.delivery.signing import OVERSIGNED, RELAXED, SIMPLE, DkimKey, DkimSigner
from newsletter.envelope import Recipient
from newsletter.errors import ConfigError

STAMP = 1_578_645_000  # 2020-01-10 08:30 UTC
DOMAIN = b"efus.eu"
CANONICALISATIONS = [(RELAXED, RELAXED), (SIMPLE, SIMPLE), (RELAXED, SIMPLE), (SIMPLE, RELAXED)]
NAMES = ["Alice Martin", "Zoë Müller", "Łukasz Żółć", "李小龙", "", "Dupont, Jean-Rémi",
         "Ole & Kari <Nordmann>", "Maximiliane Oberholzer-Lindqvist von und zu Hohenberg-" * 2,
         "\u00e9" * 60, "O'Neil \"the quick\""]
RAW = [  # what the factory never writes, and a signer must still get right
    b"From: a@example.org\r\nSubject:  spaced \t out  \r\n\tand folded\r\nTo: b@example.org"
    b"\r\n\r\nbody  with  runs\tof \t WSP \r\ntrailing \t\r\n\r\n\r\n",
    b"From: a@example.org\r\nTo: one@example.org\r\nTo: two@example.org\r\nSUBJECT: caps\r\n"
    b"Received: x\r\n\r\n",
    b"From: a@example.org\r\nSubject: no body at all\r\n\r\n\r\n\r\n",
    b"From: a@example.org\r\nSubject: " + b"long " * 200 + b"\r\n\r\nshort\r\n",
    b"From: a@example.org\r\nSubject: ends without CRLF\r\n\r\nlast line",
    b"From: a@example.org\r\nSubject: trailing space at the end\r\n\r\nlast line \t",
]


@dataclasses.dataclass(frozen=True)
class Keys:
    rsa_pem: bytes
    rsa_record: bytes
    ed_private: ed25519.Ed25519PrivateKey
    ed_seed: bytes  # base64, the form dkimpy signs with
    ed_record: bytes

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        return {b"nl2020._domainkey.efus.eu.": self.rsa_record,
                b"ed2020._domainkey.efus.eu.": self.ed_record}[name]


@pytest.fixture(scope="module")
def keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    ed = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    seed = ed.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    ed_public = ed.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return Keys(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public), ed,
                base64.b64encode(seed), b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_public))


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env={})


@pytest.fixture(scope="module")
def corpus(settings: Settings) -> list[bytes]:
    """Messages as the factory writes them: several names, a long subject, a mailto."""
    sample = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)
    long_subject = dataclasses.replace(sample, subject="Efus Newsletter – January 2020: "
                                       + "Riga, BRIDGE in Genk, and more from the projects " * 4)
    mailto = dataclasses.replace(settings, unsubscribe_mailto="unsubscribe@efus.eu",
                                 reply_to="Communications <communications@efus.eu>")
    messages = []
    for composed, chosen in ((sample, settings), (long_subject, mailto)):
        factory = _factory(composed, chosen)
        for n, name in enumerate(NAMES):
            recipient = Recipient(n + 1, f"reader{n}@example.org", name, "members")
            messages.append(factory.personalise(recipient).data)
    return messages + RAW


def _factory(composed: ComposedEmail, settings: Settings) -> MessageFactory:
    return MessageFactory(composed, settings, Signer(b"a-secret-for-the-signing-tests"),
                          send_key="send-1", date=dt.datetime(2020, 1, 10, tzinfo=dt.UTC))


def signer(keys: Keys, canonicalize: tuple[bytes, bytes] = (RELAXED, RELAXED), *,
           ed25519_too: bool = False) -> DkimSigner:
    chosen = [DkimKey(b"nl2020", serialization.load_pem_private_key(keys.rsa_pem, None))]
    if ed25519_too:
        chosen.append(DkimKey(b"ed2020", keys.ed_private))
    return DkimSigner(DOMAIN.decode(), chosen, canonicalize=canonicalize,  # type: ignore[arg-type]
                      clock=lambda: STAMP)


def dkimpy(message: bytes, keys: Keys, canonicalize: tuple[bytes, bytes], *,
           ed25519_too: bool = False, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """What dkimpy writes for the same message, keys, headers and time."""
    monkeypatch.setattr(dkim.time, "time", lambda: STAMP)
    fields = dkim.sign(message, b"nl2020", DOMAIN, keys.rsa_pem, canonicalize=canonicalize,
                       include_headers=list(OVERSIGNED), linesep=b"\r\n")
    if ed25519_too:
        fields += dkim.sign(message, b"ed2020", DOMAIN, keys.ed_seed,
                            signature_algorithm=b"ed25519-sha256", canonicalize=canonicalize,
                            include_headers=list(OVERSIGNED), linesep=b"\r\n")
    return fields + message


@pytest.mark.parametrize("canonicalize", CANONICALISATIONS, ids=lambda c: b"/".join(c).decode())
def test_signature_is_byte_for_byte_dkimpys_and_verifies(
        corpus: list[bytes], keys: Keys, canonicalize: tuple[bytes, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = signer(keys, canonicalize)
    for message in corpus:
        signed = ours.sign(message)
        assert signed == dkimpy(message, keys, canonicalize, monkeypatch=monkeypatch)
        assert dkim.verify(signed, dnsfunc=keys.dns), signed[:600]


@pytest.mark.parametrize("canonicalize", CANONICALISATIONS, ids=lambda c: b"/".join(c).decode())
def test_second_ed25519_signature_is_dkimpys_and_both_verify(
        corpus: list[bytes], keys: Keys, canonicalize: tuple[bytes, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = signer(keys, canonicalize, ed25519_too=True)
    for message in corpus:
        signed = ours.sign(message)
        assert signed == dkimpy(message, keys, canonicalize, ed25519_too=True,
                                monkeypatch=monkeypatch)
        checked = dkim.DKIM(signed)
        assert checked.verify(idx=0, dnsfunc=keys.dns)  # RSA on top, for every receiver
        assert checked.signature_fields[b"a"] == b"rsa-sha256"
        assert checked.verify(idx=1, dnsfunc=keys.dns)
        assert checked.signature_fields[b"a"] == b"ed25519-sha256"
        assert checked.signature_fields[b"s"] == b"ed2020"


def test_messages_the_factory_signs_are_dkimpys(settings: Settings, keys: Keys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The factory hands the signer its pieces, the shared fields parsed once per send."""
    sample = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)
    factory = _factory(sample, dataclasses.replace(settings, unsubscribe_mailto="u@efus.eu"))
    for canonicalize in CANONICALISATIONS:
        for n, name in enumerate(NAMES):
            recipient = Recipient(n + 1, f"reader{n}@example.org", name, "members")
            factory.dkim = None
            unsigned = factory.personalise(recipient).data
            factory.dkim = signer(keys, canonicalize, ed25519_too=True)
            assert factory.personalise(recipient).data == dkimpy(
                unsigned, keys, canonicalize, ed25519_too=True, monkeypatch=monkeypatch)


def test_factory_bodies_need_no_rewriting_by_relaxed_canonicalisation(
        corpus: list[bytes]) -> None:
    """The factory vouches for it, so that the signer hashes its bodies as they are."""
    for message in corpus[:-len(RAW)]:
        body = message.partition(b"\r\n\r\n")[2]
        assert Relaxed.canonicalize_body(body) == body


def test_a_field_added_after_signing_breaks_the_signature(corpus: list[bytes],
                                                          keys: Keys) -> None:
    signed = signer(keys).sign(corpus[0])
    fields, _, body = signed.partition(b"\r\n\r\n")
    for added in (b"From: ceo@efus.eu", b"Subject: Urgent: your account", b"To: x@example.org",
                  b"List-Unsubscribe: <https://evil.example/u>", b"Reply-To: x@evil.example",
                  b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"):
        assert not dkim.verify(fields + b"\r\n" + added + b"\r\n\r\n" + body, dnsfunc=keys.dns)
    assert b"Riga" in body
    assert not dkim.verify(signed.replace(b"Riga", b"Rome", 1), dnsfunc=keys.dns)
    h = dkim.DKIM(signed)
    assert h.verify(dnsfunc=keys.dns)
    covered = b"".join(h.signature_fields[b"h"].split()).split(b":")
    for name in (b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"subject"):
        assert covered.count(name) == 2  # once for the field, once more against additions


# --- keys and settings ---------------------------------------------------------------------

def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def with_dkim(settings: Settings, **values: str) -> Settings:
    return dataclasses.replace(settings, **{f"dkim_{k}": v for k, v in values.items()})


def test_settings_make_an_rsa_and_an_ed25519_signature(settings: Settings, keys: Keys,
                                                       tmp_path: Path) -> None:
    rsa_key = serialization.load_pem_private_key(keys.rsa_pem, None)
    pem = write(tmp_path / "rsa.private", rsa_key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))  # PKCS#1, "BEGIN RSA PRIVATE KEY"
    ed_pem = write(tmp_path / "ed.private", keys.ed_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    made = DkimSigner.from_settings(with_dkim(settings, selector="nl2020", key_file=pem,
                                              ed25519_selector="ed2020", ed25519_key_file=ed_pem))
    assert made is not None
    assert [(k.selector, k.algorithm) for k in made.keys] == [(b"nl2020", b"rsa-sha256"),
                                                              (b"ed2020", b"ed25519-sha256")]
    signed = made.sign(RAW[0])
    assert signed.count(b"DKIM-Signature: ") == 2
    assert dkim.DKIM(signed).verify(idx=1, dnsfunc=keys.dns)
    seed = write(tmp_path / "ed.key", keys.ed_seed + b"\n")  # dknewkey's format
    again = DkimSigner.from_settings(with_dkim(settings, selector="nl2020", key_file=pem,
                                               ed25519_selector="ed2020", ed25519_key_file=seed))
    assert again is not None and again.sign(RAW[1]).count(b"a=ed25519-sha256") == 1


@pytest.mark.parametrize("values, error", [
    ({"selector": "nl2020"}, "set both selector and key_file"),
    ({"ed25519_selector": "ed", "ed25519_key_file": "ed.private"},
     "set both selector and key_file"),
    ({"selector": "nl2020", "key_file": "rsa.private", "ed25519_selector": "ed"},
     "set both ed25519_selector and ed25519_key_file"),
    ({"selector": "nl2020", "key_file": "ed.private"}, "key_file: an Ed25519 key"),
    ({"selector": "nl2020", "key_file": "rsa.private", "ed25519_selector": "ed",
      "ed25519_key_file": "rsa.private"}, "ed25519_key_file: not an Ed25519 key"),
    ({"selector": "nl2020", "key_file": "garbage.private"},
     "garbage.private: not a usable private key"),
    ({"selector": "nl2020", "key_file": "locked.private"},
     "locked.private: not a usable private key .*encrypted"),
    ({"selector": "nl2020", "key_file": "missing.private"},
     "missing.private: cannot be read"),
])
def test_dkim_settings_that_cannot_sign_are_config_errors(settings: Settings, keys: Keys,
                                                          tmp_path: Path, values: dict[str, str],
                                                          error: str) -> None:
    write(tmp_path / "rsa.private", keys.rsa_pem)
    write(tmp_path / "ed.private", keys.ed_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    write(tmp_path / "garbage.private", b"-----BEGIN PRIVATE KEY-----\nnope\n")
    rsa_key = serialization.load_pem_private_key(keys.rsa_pem, None)
    write(tmp_path / "locked.private", rsa_key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase")))
    chosen = dataclasses.replace(settings, root=tmp_path, source=tmp_path / "newsletter.toml")
    with pytest.raises(ConfigError, match=error):
        DkimSigner.from_settings(with_dkim(chosen, **values))


def test_rsa_key_under_1024_bits_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "short.private"
    made = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                           "rsa_keygen_bits:512", "-out", str(key_file)], capture_output=True)
    assert made.returncode == 0, made.stderr
    with pytest.raises(ConfigError, match="a 512-bit RSA key; receivers refuse"):
        DkimKey.load("s", key_file, "dkim.key_file")


def test_no_signer_without_dkim_settings(settings: Settings) -> None:
    assert DkimSigner.from_settings(settings) is None
