"""A stand-in for Amazon SNS on 127.0.0.1: its signing certificate, SubscribeURL, and
messages signed as SNS signs them, with the key of a certificate from a throwaway CA."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from newsletter.inbound.sns import canonical

TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-bounces"


def certificates(ca: trustme.CA) -> tuple[trustme.LeafCert, ssl.SSLContext]:
    """SNS's signing certificate (RSA, as SNS's) and the TLS context of its host."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return ca.issue_cert("sns.eu-west-1.amazonaws.com", key_type=trustme.KeyType.RSA), context


class SnsHost:
    """The SNS host on 127.0.0.1: the signing certificate, and subscription confirmation."""

    def __init__(self, signing: trustme.LeafCert, context: ssl.SSLContext) -> None:
        self.requests: list[str] = []
        self.key = serialization.load_pem_private_key(signing.private_key_pem.bytes(), None)
        self.certificate = signing.cert_chain_pems[0].bytes()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                host.requests.append(self.path)
                if self.path == "/SimpleNotificationService-test.pem":
                    body, status = host.certificate, 200
                elif self.path.startswith("/?Action=ConfirmSubscription"):
                    body, status = b"<ConfirmSubscriptionResponse/>", 200
                else:
                    body, status = b"not found", 404
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()

    def sign(self, envelope: dict[str, str], version: str = "2") -> bytes:
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.key.sign(canonical(envelope), padding.PKCS1v15(), algorithm)  # type: ignore[union-attr, call-arg, arg-type]
        return json.dumps({**envelope, "SignatureVersion": version,
                           "Signature": base64.b64encode(signature).decode()}).encode()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def netloc(self) -> str:
        return self.base.removeprefix("https://")


def notification(sns: SnsHost, message: dict[str, object], **fields: str) -> dict[str, str]:
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC, "Message": json.dumps(message),
            "Timestamp": "2020-01-15T09:05:12.000Z",
            "SigningCertURL": f"{sns.base}/SimpleNotificationService-test.pem",
            "UnsubscribeURL": f"{sns.base}/?Action=Unsubscribe", **fields}
