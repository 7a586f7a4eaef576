"""The server side of SCRAM (RFC 5802 section 3, RFC 7677), written from the RFC for the scripted
broker of the enhanced-authentication tests: independent of the client's implementation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import attrs


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@attrs.define
class ScramServer:
    """Verifies one client per exchange against stored keys (the server never keeps the
    password itself: only salt, iteration count, StoredKey and ServerKey)."""

    username: str
    password: str
    iterations: int = 4096
    digest: str = "sha256"
    salt: bytes = attrs.field(factory=lambda: secrets.token_bytes(16))
    stored_key: bytes = b""
    server_key: bytes = b""
    _client_first_bare: str = ""
    _server_first: str = ""
    _nonce: str = ""

    def __attrs_post_init__(self) -> None:
        salted = hashlib.pbkdf2_hmac(
            self.digest, self.password.encode(), self.salt, self.iterations
        )
        client_key = hmac.digest(salted, b"Client Key", self.digest)
        self.stored_key = hashlib.new(self.digest, client_key).digest()
        self.server_key = hmac.digest(salted, b"Server Key", self.digest)

    def first(self, client_first: bytes) -> bytes:
        """client-first-message -> server-first-message."""
        text = client_first.decode()
        assert text.startswith("n,,"), "no channel binding expected"
        self._client_first_bare = text[3:]
        fields = dict(p.split("=", 1) for p in self._client_first_bare.split(","))
        assert fields["n"] == self.username
        self._nonce = fields["r"] + secrets.token_urlsafe(18)
        salt = _b64(self.salt)
        self._server_first = f"r={self._nonce},s={salt},i={self.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> tuple[bool, bytes]:
        """client-final-message -> (proof valid?, server-final-message)."""
        text = client_final.decode()
        without_proof, _, proof_field = text.rpartition(",p=")
        fields = dict(p.split("=", 1) for p in without_proof.split(","))
        if fields.get("c") != "biws" or fields.get("r") != self._nonce:
            return False, b"e=other-error"
        auth_message = (
            f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        )
        signature = hmac.digest(self.stored_key, auth_message, self.digest)
        proof = base64.b64decode(proof_field)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if hashlib.new(self.digest, client_key).digest() != self.stored_key:
            return False, b"e=invalid-proof"
        server_signature = hmac.digest(self.server_key, auth_message, self.digest)
        return True, f"v={_b64(server_signature)}".encode()
