"""TLS options: a verified ``ssl.SSLContext`` by default, client certificates, ALPN and SNI.

Only an explicit ``insecure_skip_verify=True`` turns verification off, and the client then logs a
warning on every connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence

import attrs

StrPath = str | os.PathLike[str]


def _tuple(value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("alpn_protocols is a sequence of strings, not one string")
    return tuple(value)


@attrs.frozen(kw_only=True)
class TLSConfig:
    """How to speak TLS to the broker.

    Without arguments this is ``ssl.create_default_context()``: the system's trusted CAs, and
    the certificate and host name are verified.

    Args:
        ca_file: a PEM file of CA certificates to trust instead of the system's.
        ca_data: PEM text of CA certificates to trust instead of the system's.
        client_cert: a PEM file with the client certificate (mutual TLS); it may hold the key.
        client_key: the client certificate's private key, when not in ``client_cert``.
        key_password: the password of an encrypted private key (never shown in reprs).
        alpn_protocols: ALPN protocol names to offer, e.g. ``["x-amzn-mqtt-ca"]`` for AWS IoT on
            port 443.
        server_hostname: the name sent in SNI and verified in the certificate (default: the
            endpoint's host), for brokers reached through an address or a tunnel.
        context: start from this ``ssl.SSLContext`` instead of the default one; it is used as
            given (set CA, certificates and ALPN on it yourself).
        insecure_skip_verify: accept any certificate for any host name. This removes the
            protection TLS gives against a man in the middle: for tests only.

    Raises:
        ValueError: ``context`` combined with options that would change it.
    """

    ca_file: StrPath | None = None
    ca_data: str | None = None
    client_cert: StrPath | None = None
    client_key: StrPath | None = None
    key_password: str | bytes | None = attrs.field(default=None, repr=False)
    alpn_protocols: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    server_hostname: str | None = None
    context: ssl.SSLContext | None = None
    insecure_skip_verify: bool = False

    def __attrs_post_init__(self) -> None:
        if self.context is not None and (
            self.ca_file
            or self.ca_data
            or self.client_cert
            or self.client_key
            or self.alpn_protocols
            or self.insecure_skip_verify
        ):
            raise ValueError(
                "context= is used as given: configure CA, certificates, ALPN and verification on it"
            )
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")

    def build_context(self) -> ssl.SSLContext:
        """The ``ssl.SSLContext`` these options describe.

        Returns:
            A new context (``context`` itself when one was given).

        Raises:
            OSError: a certificate or key file cannot be read.
            ssl.SSLError: a certificate or key is invalid (or the key password is wrong).
        """
        if self.context is not None:
            return self.context
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.client_cert is not None:
            context.load_cert_chain(
                self.client_cert, self.client_key, password=self.key_password
            )
        if self.alpn_protocols:
            context.set_alpn_protocols(list(self.alpn_protocols))
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def resolve_tls(tls: ssl.SSLContext | TLSConfig | None) -> TLSConfig | None:
    """``open_client(tls=...)`` as a :class:`TLSConfig` (an ``SSLContext`` is used as given)."""
    if tls is None or isinstance(tls, TLSConfig):
        return tls
    if isinstance(tls, ssl.SSLContext):
        return TLSConfig(context=tls)
    raise TypeError("tls must be an ssl.SSLContext or a TLSConfig")
