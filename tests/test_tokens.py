"""Webhook tokens: hashing, rotation, refusal of malformed configuration."""

import pytest

from publisher.service.tokens import TokenConfigError, TokenSet, config_line, generate_token, hash_token


def test_generated_tokens_are_long_and_distinct():
    tokens = {generate_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 40 for token in tokens)


def test_hash_matches_and_rotation_accepts_every_configured_token():
    old, new = generate_token(), generate_token()
    accepted = TokenSet([hash_token(old), hash_token(new)])
    assert accepted.matches(old)
    assert accepted.matches(new)
    assert not accepted.matches(old + "x")
    assert not accepted.matches("")


def test_hash_is_sha256_of_the_token():
    assert hash_token("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_config_line_holds_only_the_hash():
    token = generate_token()
    line = config_line(token)
    assert token not in line
    assert hash_token(token) in line


@pytest.mark.parametrize("entry", ["plain-token", "sha256:abc", "sha256:" + "zz" * 32, "md5:" + "00" * 16])
def test_malformed_entries_are_refused_without_echoing_them(entry):
    with pytest.raises(TokenConfigError) as error:
        TokenSet([entry])
    assert entry not in str(error.value)


def test_empty_set_matches_nothing():
    assert not TokenSet([]).matches("anything")
