"""SCRAM (RFC 5802/7677) client steps without I/O: the RFC's test vector, the server side of
tests/scram_server.py, and every way a server's message can be wrong."""

from __future__ import annotations

import pytest

from tests.scram_server import ScramServer
from trio_mqtt import AuthenticationError, ScramAuthenticator
from trio_mqtt._auth import saslprep


class FixedNonce(ScramAuthenticator):
    def _new_nonce(self) -> str:
        return "rOprNGfwEbeRWgbNEkqO"


SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"


def test_rfc7677_vector() -> None:
    client = FixedNonce(username="user", password="pencil")
    assert client.method == "SCRAM-SHA-256"
    assert client.start() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.challenge(SERVER_FIRST) == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    client.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")  # verifies


@pytest.mark.parametrize(
    ("algorithm", "digest"), [("SHA-256", "sha256"), ("SHA-512", "sha512")]
)
def test_against_the_rfc_server(algorithm: str, digest: str) -> None:
    server = ScramServer("al=ice,", "pässwörd", digest=digest)
    server.username = "al=3Dice=2C"  # the escaped form is what travels (RFC 5802 5.1)
    client = ScramAuthenticator(
        username="al=ice,", password="pässwörd", algorithm=algorithm
    )
    for _ in range(2):  # start() begins a fresh exchange each time
        final = client.challenge(server.first(client.start()))
        ok, server_final = server.final(final)
        assert ok
        client.finish(server_final)


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        (b"e=unknown-user", "refused"),
        (b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
        (
            b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "nonce",
        ),  # not extended
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", "iterations"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=not base64!,i=4096", "base64"),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", "incomplete"),
        (b"\xff\xfe", "malformed"),
    ],
)
def test_bad_server_first_message(server_first: bytes, message: str) -> None:
    client = FixedNonce(username="user", password="pencil")
    client.start()
    with pytest.raises(AuthenticationError, match=message):
        client.challenge(server_first)


@pytest.mark.parametrize(
    "server_final",
    [
        b"v=AAAA",
        b"v=",
        b"",
        b"e=invalid-proof",
        b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    ],
)
def test_bad_server_final_message(server_final: bytes) -> None:
    client = FixedNonce(username="user", password="pencil")
    client.start()
    client.challenge(SERVER_FIRST)
    with pytest.raises(AuthenticationError):
        client.finish(server_final)


def test_accepting_before_the_exchange_ends_is_refused() -> None:
    client = FixedNonce(username="user", password="pencil")
    client.start()
    with pytest.raises(AuthenticationError, match="before"):
        client.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_password_not_in_repr() -> None:
    assert "pencil" not in repr(ScramAuthenticator(username="user", password="pencil"))


@pytest.mark.parametrize(
    ("text", "prepared"),
    [  # RFC 4013 section 3 examples
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),
    ],
)
def test_saslprep(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize("text", ["\u0007", "\u0627\u0031"])
def test_saslprep_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="SASLprep"):
        saslprep(text)
