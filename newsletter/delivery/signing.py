"""DKIM signatures (RFC 6376), made by OpenSSL through `cryptography`, added last.

dkimpy computes RSA in pure Python (about 9 ms a message); OpenSSL takes a quarter of a
millisecond. Canonicalisation, header selection and the layout of the DKIM-Signature field
follow dkimpy's `dkim.sign` to the byte, so that for the same key, message and time both
write the same signature (RSA PKCS#1 v1.5 and Ed25519 are deterministic); the tests hold
the two to that and verify with dkimpy. What is the same for every message of a send is
prepared once: the parsed key, the h= list, the canonical form of the shared headers.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..config import Settings
from ..errors import ConfigError

# What receivers show or act on (RFC 8058 requires both List-Unsubscribe fields). Each is
# listed twice: a field listed once more than the message has it cannot be added after
# signing (RFC 6376 section 8.15), so nobody can slip in a second From or Subject.
SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Reply-To", b"List-Id",
                  b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version",
                  b"Content-Type")
OVERSIGNED = SIGNED_HEADERS + SIGNED_HEADERS
RELAXED, SIMPLE = b"relaxed", b"simple"
MIN_RSA_BITS = 1024  # RFC 8301: verifiers refuse shorter keys
_WSP_RUN = re.compile(rb"[\t ]+")
_TRAILING_WSP = re.compile(rb"[\t ]+\r\n")
_FIELD_START = re.compile(rb"\r\n(?![\t ])")  # a line break not followed by a fold
_EMPTY_B_TAG = re.compile(rb"([;\s]b(?:(?:\s*\r?\n)?\s+)?=)(?:(?:(?:\s*\r?\n)?\s+)?[a-zA-Z0-9+/=])*"
                          rb"(?:\r?\n\Z)?")
_B_STANDIN = b"0" * 60
_SELECTIONS_KEPT = 16  # selections kept: a send's shared fields, or messages signed whole


@dataclass(frozen=True)
class DkimKey:
    """One selector and its private key: RSA (rsa-sha256) or Ed25519 (ed25519-sha256)."""

    selector: bytes
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if isinstance(self.private, rsa.RSAPrivateKey) \
            else b"ed25519-sha256"

    def sign(self, header_hash: hashlib._Hash) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(header_hash.digest(), _PKCS1, _PREHASHED)
        return self.private.sign(header_hash.digest())  # RFC 8463: Ed25519 over the SHA-256

    @classmethod
    def load(cls, selector: str, key_file: Path, setting: str) -> DkimKey:
        """A key from a PEM file (PKCS#1 or PKCS#8), or dkimpy's base64 Ed25519 seed."""
        try:
            data = key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{setting} {key_file}: cannot be read ({exc.strerror})") \
                from None
        try:
            private = _private_key(data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{setting} {key_file}: not a usable private key ({exc})") \
                from None
        if isinstance(private, rsa.RSAPrivateKey) and private.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{setting} {key_file}: a {private.key_size}-bit RSA key; "
                              "receivers refuse keys under 1024 bits, make one of 2048")
        try:
            return cls(selector.encode("ascii"), private)
        except UnicodeEncodeError:
            raise ConfigError(f"dkim selector {selector!r}: expected ASCII letters, digits, "
                              "dots and hyphens") from None


def _private_key(data: bytes) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    if b"-----BEGIN" not in data:  # dknewkey writes an Ed25519 key as its base64 seed
        seed = base64.b64decode(data.strip(), validate=True)
        if len(seed) != 32:
            raise ValueError("neither PEM nor a base64 Ed25519 seed of 32 bytes")
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    private = serialization.load_pem_private_key(data, password=None)
    if not isinstance(private, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError(f"a {type(private).__name__.removeprefix('_')}; DKIM signs with "
                         "RSA or Ed25519")
    return private


_PKCS1, _PREHASHED = padding.PKCS1v15(), Prehashed(hashes.SHA256())


class DkimSigner:
    """Signs finished messages for one domain, once per key (RSA first, then Ed25519)."""

    def __init__(self, domain: str, keys: Sequence[DkimKey], *,
                 canonicalize: tuple[bytes, bytes] = (RELAXED, RELAXED),
                 include_headers: Sequence[bytes] = OVERSIGNED,
                 clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("a DkimSigner needs at least one key")
        if not set(canonicalize) <= {RELAXED, SIMPLE}:
            raise ValueError(f"canonicalization {canonicalize!r}: relaxed or simple")
        self.domain = domain.encode("ascii")
        self.keys = tuple(keys)
        self.header_canon, self.body_canon = canonicalize
        self.include = tuple(name.lower() for name in include_headers)
        if b"from" not in self.include:
            raise ValueError("DKIM requires the From field to be signed")
        self._clock = clock
        self._selections: dict[tuple[bytes, tuple[bytes, ...]], list[bytes | int]] = {}
        self._plans: dict[tuple[bytes, int], list[tuple[int, int]]] = {}
        c, h = b"/".join(canonicalize), b" : ".join(self.include)
        # Every tag but t=, bh= and b=, as dkimpy orders them.
        self._tags = [(b"v=1; a=" + key.algorithm + b"; c=" + c + b"; d=" + self.domain +
                       b"; i=@" + self.domain + b"; q=dns/txt; s=" + key.selector + b"; t=",
                       b"; h=" + h + b"; bh=") for key in self.keys]

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      unsigned: Sequence[str] = ()) -> DkimSigner | None:
        """A signer when [dkim] selector and key_file are set, else None. `unsigned` names
        headers the transport's service replaces (a signature over them would break)."""
        s = settings
        if not (s.dkim_selector or s.dkim_key_file or s.dkim_ed25519_selector
                or s.dkim_ed25519_key_file):
            return None
        if not (s.dkim_selector and s.dkim_key_file):
            raise ConfigError("dkim: set both selector and key_file (an RSA key), or neither")
        keys = [DkimKey.load(s.dkim_selector, s.path(s.dkim_key_file), "dkim.key_file")]
        if not isinstance(keys[0].private, rsa.RSAPrivateKey):
            raise ConfigError("dkim.key_file: an Ed25519 key; key_file takes the RSA key, "
                              "which every receiver checks, and ed25519_key_file this one")
        if s.dkim_ed25519_selector or s.dkim_ed25519_key_file:
            if not (s.dkim_ed25519_selector and s.dkim_ed25519_key_file):
                raise ConfigError("dkim: set both ed25519_selector and ed25519_key_file, "
                                  "or neither")
            key = DkimKey.load(s.dkim_ed25519_selector, s.path(s.dkim_ed25519_key_file),
                               "dkim.ed25519_key_file")
            if not isinstance(key.private, ed25519.Ed25519PrivateKey):
                raise ConfigError("dkim.ed25519_key_file: not an Ed25519 key (make one with "
                                  "openssl genpkey -algorithm ed25519)")
            keys.append(key)
        left_out = {name.lower().encode("ascii") for name in unsigned}
        include = tuple(h for h in OVERSIGNED if h.lower() not in left_out)
        try:
            return cls(s.dkim_domain or s.sender_domain, keys, include_headers=include)
        except UnicodeEncodeError:
            raise ConfigError(f"dkim.domain {s.dkim_domain or s.sender_domain!r}: expected an "
                              "ASCII domain (IDNA, xn--...)") from None

    def sign(self, data: bytes) -> bytes:
        """`data`, a message with CRLF line ends, with its DKIM-Signature fields on top."""
        end = data.find(b"\r\n\r\n")
        head, start = (data[:end + 2], end + 4) if end >= 0 else (data, len(data))
        return self._fields(head, (), memoryview(data)[start:], False) + data

    def sign_parts(self, shared: bytes, own: Sequence[bytes], body: Sequence[bytes], *,
                   canonical_body: bool = False) -> bytes:
        """A message made of its header fields and body, signed, as one bytes object.

        `shared`: the header fields every message of a send has, parsed once for all; `own`:
        this message's other fields, one each, each ending in CRLF; then a blank line and
        the `body` pieces. `canonical_body`: the caller vouches that the body has no tab, no
        two spaces in a row and no space before a line break, so that relaxed
        canonicalisation would leave it as it is; looking for them costs more than hashing.
        """
        whole = b"".join(body)  # one copy, then one call to hash it: quicker than pieces
        return b"".join((self._fields(shared, own, whole, canonical_body), shared, *own,
                         b"\r\n", whole))

    def _fields(self, shared: bytes, own: Sequence[bytes], body: bytes | memoryview,
                canonical_body: bool) -> bytes:
        body_hash = base64.b64encode(self._body_hash(body, canonical_body))
        headers = self._select(shared, own)
        stamp = str(int(self._clock())).encode("ascii")
        fields = []
        for key, (before_t, before_bh) in zip(self.keys, self._tags, strict=True):
            value = before_t + stamp + before_bh + body_hash + b"; b="
            hashed = hashlib.sha256(headers)
            # The signature's own field, its b= empty, hashed last without its CRLF. Sixty
            # zeros stand for b= while folding, as in dkimpy, so that it starts a line.
            unsigned = self._fold(key, value + _B_STANDIN)
            if unsigned.endswith(b"=" + _B_STANDIN):
                unsigned = unsigned[:-len(_B_STANDIN)]
            else:
                unsigned = _EMPTY_B_TAG.sub(rb"\1", unsigned)
            if self.header_canon == RELAXED:
                hashed.update(b"dkim-signature:" + _relaxed_value(b" " + unsigned))
            else:
                hashed.update(b"DKIM-Signature: " + unsigned.rstrip())
            signature = base64.b64encode(key.sign(hashed))
            fields.append(b"DKIM-Signature: " + self._fold(key, value + signature) + b"\r\n")
        return b"".join(fields)

    def _body_hash(self, body: bytes | memoryview, canonical: bool) -> bytes:
        """SHA-256 of the canonical body; of the body as it is when that is the same."""
        ends_once = len(body) >= 3 and bytes(body[-3:]) != b"\n\r\n" \
            and bytes(body[-2:]) == b"\r\n"  # no empty line to drop, no CRLF to add
        if ends_once and (canonical or self.body_canon == SIMPLE):
            return hashlib.sha256(body).digest()
        body = bytes(body)
        if self.body_canon == RELAXED:
            if b"\t" in body or b"  " in body or b" \r\n" in body:
                body = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"\r\n", body))
            body = _without_trailing_lines(body)
            return hashlib.sha256(b"" if body == b"\r\n" else body).digest()
        return hashlib.sha256(_without_trailing_lines(body)).digest()

    def _select(self, shared: bytes, own: Sequence[bytes]) -> bytes:
        """The canonical fields named in h=, in its order, each taken from the bottom up."""
        canonical = [self._canonical(raw) for raw in own]
        names = tuple(name for name, _ in canonical)
        plan = self._selections.get((shared, names))
        if plan is None:
            if len(self._selections) >= _SELECTIONS_KEPT:
                self._selections.clear()
            plan = self._selections[shared, names] = self._selection(shared, names)
        return b"".join([canonical[step][1] if isinstance(step, int) else step
                         for step in plan])

    def _selection(self, shared: bytes, own: tuple[bytes, ...]) -> list[bytes | int]:
        """Which field goes where in the signed headers: the shared ones, canonical once
        for all, and the index of each of the message's own, which it canonicalises."""
        found: dict[bytes, list[bytes | int]] = {}
        for raw in _FIELD_START.split(shared.removesuffix(b"\r\n")):
            if b":" in raw:
                name, canonical = self._canonical(raw)
                found.setdefault(name, []).append(canonical)
        for index, name in enumerate(own):
            found.setdefault(name, []).append(index)
        return [found[name].pop() for name in self.include if found.get(name)]

    def _canonical(self, raw: bytes) -> tuple[bytes, bytes]:
        """One field's lowercase name, and the field as the header canonicalisation has it."""
        name, _, value = raw.removesuffix(b"\r\n").partition(b":")
        key = name.lower().rstrip()
        if self.header_canon == RELAXED:
            return key, key + b":" + _relaxed_value(value) + b"\r\n"
        return key, raw.removesuffix(b"\r\n") + b"\r\n"

    def _fold(self, key: DkimKey, value: bytes) -> bytes:
        """The value folded as `_fold_plan` cuts it, by a plan made once per key and length.

        Only t=, bh= and b= change from one message to the next; none has a space and each
        keeps its length, so the cuts fall at the same places in every message.
        """
        plan = self._plans.get((key.selector, len(value)))
        if plan is None:
            if len(self._plans) > 8:
                self._plans.clear()
            plan = self._plans[key.selector, len(value)] = _fold_plan(value)
        return b"\r\n ".join([value[start:end] for start, end in plan])


def _relaxed_value(value: bytes) -> bytes:
    """RFC 6376 3.4.2: unfolded, runs of WSP as one space, none at either end."""
    if b"\n" in value:
        value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    return value.strip()


def _without_trailing_lines(body: bytes | memoryview) -> bytes | memoryview:
    """RFC 6376 3.4.3: no empty lines at the end, and one CRLF at the very end."""
    end = len(body)
    while end >= 2 and body[end - 2:end] == b"\r\n":
        end -= 2
    if end == len(body):
        return bytes(body) + b"\r\n"
    return body if end + 2 == len(body) else body[:end + 2]


def _fold_plan(value: bytes) -> list[tuple[int, int]]:
    """Where a DKIM-Signature value is cut into lines of 72 columns, as dkimpy cuts it.

    The first line leaves room for `DKIM-Signature: `; a line is cut at its last space, or
    mid-token when it has none (base64), and goes on after CRLF and one space. The CRLF that
    ends the field comes after, so that no cut can fall between its CR and LF.
    """
    limit, start, lines = 72 - len(b"DKIM-Signature"), 0, []
    while len(value) - start > limit:
        cut = value.rfind(b" ", start, start + limit)
        if cut == -1:
            lines.append((start, start + limit))
            start += limit
        else:
            lines.append((start, cut))
            start = cut + 1
        limit = 71
    lines.append((start, len(value)))
    return lines
