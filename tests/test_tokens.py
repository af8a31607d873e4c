"""Unsubscribe tokens: signed, bound to one subscriber and one list, unforgeable without the key."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from newsletter.audience.tokens import SECRET_FILE, TEST_SUBSCRIBER_ID, Signer, load_secret
from newsletter.errors import ConfigError

SECRET = b"a-secret-for-the-tests-0123456789"


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


def test_token_round_trips_to_its_subscriber_and_list(signer: Signer) -> None:
    token = signer.unsubscribe_token(4217, "members")
    verified = signer.verify_unsubscribe(token)
    assert verified is not None
    assert (verified.subscriber_id, verified.list_name) == (4217, "members")
    assert not verified.is_test


def test_list_names_with_colons_and_non_ascii_round_trip(signer: Signer) -> None:
    verified = signer.verify_unsubscribe(signer.unsubscribe_token(7, "villes:Liège"))
    assert verified is not None and verified.list_name == "villes:Liège"


def test_token_is_url_safe_and_short(signer: Signer) -> None:
    token = signer.unsubscribe_token(123456789, "members")
    assert len(token) < 80
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_test_token_unsubscribes_nobody(signer: Signer) -> None:
    verified = signer.verify_unsubscribe(signer.unsubscribe_token(TEST_SUBSCRIBER_ID, "__test__"))
    assert verified is not None and verified.is_test


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_every_other_spelling_of_a_token_is_rejected(signer: Signer) -> None:
    """Any character changed, anywhere, to any other: including base64's padding bits."""
    for subscriber in (1, 42, 99999):
        token = signer.unsubscribe_token(subscriber, "members")
        for index, original in enumerate(token):
            for char in (B64 + ".=!é").replace(original, ""):
                changed = token[:index] + char + token[index + 1:]
                assert signer.verify_unsubscribe(changed) is None, changed
            inserted = token[:index] + "!" + token[index:]
            assert signer.verify_unsubscribe(inserted) is None, inserted


def test_truncated_and_malformed_tokens_are_rejected(signer: Signer) -> None:
    token = signer.unsubscribe_token(42, "members")
    for cut in range(len(token)):
        assert signer.verify_unsubscribe(token[:cut]) is None
    for bad in ("", ".", "x", "..", "a.b.c", "!!!.???", "=" * 40, token + "A", "é." + token,
                token.replace(".", ""), "x" * 10_000):
        assert signer.verify_unsubscribe(bad) is None


def test_a_token_for_one_subscriber_or_list_cannot_be_rewritten_for_another(
        signer: Signer) -> None:
    token = signer.unsubscribe_token(42, "members")
    _, _, mac = token.partition(".")
    other_payload = signer.unsubscribe_token(43, "members").partition(".")[0]
    assert signer.verify_unsubscribe(f"{other_payload}.{mac}") is None
    other_list = signer.unsubscribe_token(42, "partners").partition(".")[0]
    assert signer.verify_unsubscribe(f"{other_list}.{mac}") is None


def test_token_from_another_secret_is_rejected(signer: Signer) -> None:
    token = Signer(b"another-secret-of-enough-length").unsubscribe_token(42, "members")
    assert signer.verify_unsubscribe(token) is None


def test_tokens_of_neighbouring_subscribers_share_no_mac(signer: Signer) -> None:
    macs = {signer.unsubscribe_token(n, "members").partition(".")[2] for n in range(1, 2001)}
    assert len(macs) == 2000  # nothing sequential to enumerate


def test_message_keys_are_stable_per_send_and_subscriber(signer: Signer) -> None:
    assert signer.message_key("send-1", 42) == signer.message_key("send-1", 42)
    assert signer.message_key("send-1", 42) != signer.message_key("send-1", 43)
    assert signer.message_key("send-1", 42) != signer.message_key("send-2", 42)
    assert Signer(b"another-secret-of-enough-length").message_key("send-1", 42) != \
        signer.message_key("send-1", 42)


# --- the secret ----------------------------------------------------------------------------

def test_secret_file_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    first = load_secret({}, tmp_path)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret({}, tmp_path) == first
    assert load_secret({}, tmp_path / "elsewhere") != first  # each newsletter its own key


def test_secret_file_folder_is_created(tmp_path: Path) -> None:
    load_secret({}, tmp_path / "data" / "db")
    assert (tmp_path / "data" / "db" / SECRET_FILE).is_file()


def test_environment_secret_wins_over_the_file(tmp_path: Path) -> None:
    from_file = load_secret({}, tmp_path)
    from_env = load_secret({"NEWSLETTER_SECRET": "s" * 32}, tmp_path)
    assert from_env == b"s" * 32 != from_file


def test_environment_secret_does_not_create_a_file(tmp_path: Path) -> None:
    load_secret({"NEWSLETTER_SECRET": "s" * 32}, tmp_path)
    assert not (tmp_path / SECRET_FILE).exists()


def test_too_short_secret_is_rejected_with_advice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET is too short.*16") as caught:
        load_secret({"NEWSLETTER_SECRET": "hunter2-abc"}, tmp_path)
    assert "hunter2" not in str(caught.value)  # the secret itself is never echoed


def test_processes_racing_to_create_the_secret_all_get_the_same_one(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:  # threads: os.link decides the winner either way
        keys = set(pool.map(lambda _: load_secret({}, tmp_path), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]  # no temporary left behind


def test_empty_secret_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_bytes(b"\n")
    with pytest.raises(ConfigError, match=f"{SECRET_FILE}: the secret is empty"):
        load_secret({}, tmp_path)


def test_delivery_token_names_its_send_and_subscriber_and_survives_upper_case(
        signer: Signer) -> None:
    token = signer.delivery_token(3, 1742)
    assert len(token) <= 30 and set(token) <= set("abcdefghijklmnopqrstuvwxyz0123456789.")
    for spelling in (token, token.upper()):
        named = signer.verify_delivery(spelling)
        assert named is not None and (named.send_id, named.subscriber_id) == (3, 1742)


def test_a_delivery_token_cannot_be_moved_to_another_delivery_or_key(signer: Signer) -> None:
    token = signer.delivery_token(3, 1742)
    mac = token.rpartition(".")[2]
    assert signer.verify_delivery(f"3.1743.{mac}") is None
    assert signer.verify_delivery(f"4.1742.{mac}") is None
    assert Signer(b"another-secret-0123456789").verify_delivery(token) is None
    assert signer.verify_delivery(signer.unsubscribe_token(1742, "members")) is None
    assert signer.verify_delivery("") is None
