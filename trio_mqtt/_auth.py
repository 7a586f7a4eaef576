"""Enhanced authentication (MQTT 5, section 4.12): the :class:`Authenticator` interface, and SCRAM
(RFC 5802, with SHA-256 per RFC 7677) as a real mechanism to use or to copy.

An authenticator is a small synchronous state machine: the client calls :meth:`~Authenticator.start`
for the data to put in CONNECT (and again for each re-authentication), :meth:`~Authenticator.challenge`
for each AUTH 0x18 the broker sends, and :meth:`~Authenticator.finish` with the data of the final
CONNACK or AUTH 0x00, where a mechanism with mutual authentication checks the server's proof.
Raising from any of them ends the attempt with :class:`AuthenticationError`, and the client does
not retry: a failed proof means the wrong credentials or the wrong server.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata

import attrs

from ._exceptions import AuthenticationError


class Authenticator(abc.ABC):
    """A mechanism for MQTT 5 enhanced authentication (section 4.12).

    Subclasses set :attr:`method` (the Authentication Method, e.g. ``"SCRAM-SHA-256"``) and
    implement :meth:`start` and :meth:`challenge`; :meth:`finish` checks the server's final data
    where the mechanism has any. The methods are called from the client's tasks and must not
    block. One authenticator serves one client: :meth:`start` begins a fresh exchange each time.
    """

    @property
    @abc.abstractmethod
    def method(self) -> str:
        """The Authentication Method sent in CONNECT and every AUTH (a class attribute will do)."""

    @abc.abstractmethod
    def start(self) -> bytes | None:
        """Begin an exchange (on every connection, and for each re-authentication).

        Returns:
            The Authentication Data for CONNECT (or AUTH 0x19), or None.

        Raises:
            AuthenticationError: the exchange cannot start (any other exception is turned
                into one).
        """

    @abc.abstractmethod
    def challenge(self, data: bytes | None) -> bytes | None:
        """Answer the broker's AUTH 0x18 (continue authentication).

        Args:
            data: its Authentication Data (None if it sent none).

        Returns:
            The Authentication Data to send back, or None.

        Raises:
            AuthenticationError: the challenge is refused: the client ends the connection
                with DISCONNECT 0x80 (any other exception is turned into one).
        """

    def finish(self, data: bytes | None) -> None:  # noqa: B027 - optional hook
        """The broker accepted (CONNACK 0x00 or AUTH 0x00). The default accepts.

        Args:
            data: its final Authentication Data (e.g. SCRAM's server signature).

        Raises:
            AuthenticationError: its proof does not check out: the connection ends and is not
                retried (any other exception is turned into one).
        """


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a user name or password (stored strings: unassigned code points
    are refused).

    Raises:
        ValueError: a prohibited character or a bidirectional-text violation.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c
        for c in text
        if not stringprep.in_table_b1(c)
    )
    normal = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1, stringprep.in_table_c12, stringprep.in_table_c21_c22,
        stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
        stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9,
    )  # fmt: skip
    if any(check(c) for c in normal for check in prohibited):
        raise ValueError("the string holds a character SASLprep prohibits")
    if any(stringprep.in_table_d1(c) for c in normal) and (
        any(stringprep.in_table_d2(c) for c in normal)
        or not (
            stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])
        )
    ):
        raise ValueError("the string breaks SASLprep's bidirectional text rules")
    return normal


def _escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
        return dict(part.split("=", 1) for part in text.split(",") if part)
    except (UnicodeDecodeError, ValueError):
        raise AuthenticationError("SCRAM: the server's message is malformed") from None


@attrs.define(kw_only=True)
class ScramAuthenticator(Authenticator):
    """SCRAM (RFC 5802) with SHA-256 (RFC 7677, method ``SCRAM-SHA-256``) or SHA-512.

    The password never travels: the client proves it knows it, and checks in :meth:`finish`
    that the server knows it too (mutual authentication). No channel binding (``n,,``).

    Args:
        username: the SCRAM user name (prepared with SASLprep).
        password: the password (prepared with SASLprep; never shown in reprs).
        algorithm: ``"SHA-256"`` (default) or ``"SHA-512"``.
        minimum_iterations: refuse a server that asks for fewer PBKDF2 iterations (a
            downgrade).
    """

    username: str
    password: str = attrs.field(repr=False)
    algorithm: str = attrs.field(
        default="SHA-256", validator=attrs.validators.in_(("SHA-256", "SHA-512"))
    )
    minimum_iterations: int = 4096
    _nonce: str = attrs.field(init=False, default="", repr=False)
    _client_first_bare: str = attrs.field(init=False, default="", repr=False)
    _server_signature: bytes = attrs.field(init=False, default=b"", repr=False)

    @property
    def method(self) -> str:
        return f"SCRAM-{self.algorithm}"

    def _new_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    @property
    def _hash(self) -> str:
        return self.algorithm.replace("-", "").lower()

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.digest(key, message, self._hash)

    def start(self) -> bytes:
        self._nonce = self._new_nonce()
        self._client_first_bare = (
            f"n={_escape(saslprep(self.username))},r={self._nonce}"
        )
        self._server_signature = b""
        return f"n,,{self._client_first_bare}".encode()

    def challenge(self, data: bytes | None) -> bytes:
        if not self._client_first_bare or self._server_signature:
            raise AuthenticationError("SCRAM: unexpected challenge")
        server_first = (data or b"").decode("utf-8", "replace")
        attributes = _attributes(data or b"")
        if "e" in attributes:
            raise AuthenticationError(f"SCRAM: the server refused: {attributes['e']}")
        nonce, salt, iterations = (attributes.get(k) for k in ("r", "s", "i"))
        if not nonce or not salt or not iterations or not iterations.isdigit():
            raise AuthenticationError("SCRAM: the server's first message is incomplete")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise AuthenticationError("SCRAM: the server's nonce does not extend ours")
        if int(iterations) < self.minimum_iterations:
            raise AuthenticationError(
                f"SCRAM: the server asks for {iterations} iterations, fewer than {self.minimum_iterations}"
            )
        try:
            salt_bytes = base64.b64decode(salt, validate=True)
        except ValueError:
            raise AuthenticationError("SCRAM: the salt is not base64") from None
        salted = hashlib.pbkdf2_hmac(
            self._hash, saslprep(self.password).encode(), salt_bytes, int(iterations)
        )
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"  # biws = base64("n,,")
        auth_message = (
            f"{self._client_first_bare},{server_first},{without_proof}".encode()
        )
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = self._hmac(
            self._hmac(salted, b"Server Key"), auth_message
        )
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def finish(self, data: bytes | None) -> None:
        expected, self._server_signature = self._server_signature, b""
        if not expected:
            raise AuthenticationError(
                "SCRAM: the server accepted before the exchange ended"
            )
        attributes = _attributes(data or b"")
        if "e" in attributes:
            raise AuthenticationError(f"SCRAM: the server refused: {attributes['e']}")
        try:
            verifier = base64.b64decode(attributes.get("v", ""), validate=True)
        except ValueError:
            verifier = b""
        if not hmac.compare_digest(verifier, expected):
            raise AuthenticationError(
                "SCRAM: the server's signature does not verify (wrong server, or it does not know the password)"
            )
