"""AWS credentials from the standard places, as the AWS CLI and SDKs look for them.

    1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment
    2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials),
       profile AWS_PROFILE (default `default`): aws_access_key_id, aws_secret_access_key,
       aws_session_token

Never from the transport URL or newsletter.toml. Profiles that only name a role or an SSO
session hold no keys to sign with; `aws configure export-credentials --profile NAME
--format env` turns them into environment variables.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
TOKEN_VARIABLE = "AWS_SESSION_TOKEN"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "the environment"  # where they came from, for messages

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in a message or a log."""
        return tuple(s for s in (self.secret_key, self.token) if s)


def find_credentials(env: Mapping[str, str], shown: str) -> Credentials:
    """The credentials the AWS tools would use; `shown` names the transport in errors."""
    access, secret = (env.get(name, "").strip() for name in KEY_VARIABLES)
    if access or secret:
        if not (access and secret):
            missing = KEY_VARIABLES[1] if access else KEY_VARIABLES[0]
            raise ConfigError(f"transport {shown}: {missing} is not set; set both "
                              f"{' and '.join(KEY_VARIABLES)} (and {TOKEN_VARIABLE} for "
                              "temporary credentials)")
        return Credentials(access, secret, env.get(TOKEN_VARIABLE, "").strip() or None)
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE")
                or Path(env.get("HOME") or Path.home()) / ".aws" / "credentials").expanduser()
    profile = env.get("AWS_PROFILE", "").strip() or "default"
    where = f"{path}, profile {profile}"
    parser = configparser.RawConfigParser()
    try:
        found = parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"transport {shown}: {path}: cannot be read "
                          f"({str(exc).splitlines()[0]})") from None
    if not found or not parser.has_section(profile):
        raise ConfigError(f"transport {shown}: no AWS credentials: set "
                          f"{' and '.join(KEY_VARIABLES)} (and {TOKEN_VARIABLE} for temporary "
                          f"credentials) in the environment, or put them in {path} under "
                          f"[{profile}] (AWS_PROFILE names another profile)")
    section = parser[profile]
    access = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not (access and secret):
        raise ConfigError(f"transport {shown}: {where} has no aws_access_key_id and "
                          "aws_secret_access_key; for a role or SSO profile, run `aws "
                          f"configure export-credentials --profile {profile} --format env` "
                          "and export what it prints")
    return Credentials(access, secret, section.get("aws_session_token", "").strip() or None,
                       where)
