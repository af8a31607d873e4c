"""A real IMAP server for the tests: Debian's Dovecot, started unprivileged from a config in
a temporary folder, with TLS from a throwaway CA; and a TLS proxy in front of it that can
hold the client's MOVE command, to stop `bounces fetch` between its commit and its move."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient
from smtp_server import free_port

DOVECOT = Path("/usr/sbin/dovecot")
USER, PASSWORD = "bounces", "imap-test-password"
CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = newsletter-test-{port}
log_path = {folder}/dovecot.log
ssl = required
ssl_cert = <{folder}/cert.pem
ssl_key = <{folder}/key.pem
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={folder}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"""


def require_dovecot() -> None:
    if not DOVECOT.exists():
        if os.environ.get("NEWSLETTER_REQUIRE_DOVECOT"):
            pytest.fail("NEWSLETTER_REQUIRE_DOVECOT is set but /usr/sbin/dovecot is missing")
        pytest.skip("Dovecot not installed (apt-get install dovecot-imapd)")


class Dovecot:
    """`with Dovecot(ca) as imap:` an IMAPS server on 127.0.0.1:imap.port for USER."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="newsletter-imap-"))
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Dovecot:
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        (self.folder / "key.pem").write_bytes(cert.private_key_pem.bytes())
        (self.folder / "cert.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
        (self.folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        # As root (CI), the whole server runs as nobody; otherwise as the user running the
        # tests. Either way it is unprivileged and touches nothing outside its folder.
        root = os.geteuid() == 0
        user, group = ("nobody", "nogroup") if root else (_name(), _group())
        (self.folder / "dovecot.conf").write_text(CONFIG.format(
            folder=self.folder, port=self.port, user=user, group=group))
        command = [str(DOVECOT), "-F", "-c", str(self.folder / "dovecot.conf")]
        if root:
            shutil.chown(self.folder, "nobody", "nogroup")
            for path in self.folder.iterdir():
                shutil.chown(path, "nobody", "nogroup")
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                       *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, self.folder / "dovecot.log")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self) -> IMAPClient:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        client = IMAPClient("127.0.0.1", port=self.port, ssl=True, ssl_context=context,
                            timeout=20)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            for message in messages:
                client.append(folder, message)
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            found = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [bytes(found[uid][b"BODY[]"]) for uid in sorted(found)]
        finally:
            client.logout()


class HoldingProxy:
    """TLS in front (the CA's certificate), TLS to Dovecot behind; holds any MOVE."""

    def __init__(self, ca: trustme.CA, upstream_port: int) -> None:
        self.ca, self.upstream_port = ca, upstream_port
        self.held = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(server)
        self._server_context = server
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HoldingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            downstream = self._server_context.wrap_socket(raw, server_side=True)
            context = ssl.create_default_context()
            self.ca.configure_trust(context)
            upstream = context.wrap_socket(socket.create_connection(
                ("127.0.0.1", self.upstream_port), timeout=20), server_hostname="127.0.0.1")
        except OSError:
            raw.close()
            return
        threading.Thread(target=self._relay, args=(upstream, downstream, False),
                         daemon=True).start()
        self._relay(downstream, upstream, True)

    def _relay(self, source: ssl.SSLSocket, target: ssl.SSLSocket, commands: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if commands and re.search(rb"(?i)\bMOVE\b", chunk):
                    self.held.set()  # the client committed and now moves: hold it here
                    self._stop.wait()
                    return
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.close()
                except OSError:
                    pass


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited {process.returncode}: "
                               + (log.read_text() if log.exists() else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet: no event to wait on
    raise RuntimeError("dovecot did not start listening within 30 s")


def _name() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    import grp

    return grp.getgrgid(os.getgid()).gr_name
