"""Connection options as validated values: broker URLs and endpoints. Secrets stay out of reprs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs

_DEFAULT_PORTS: Final = {
    "mqtt": 1883,
    "tcp": 1883,
    "mqtts": 8883,
    "ssl": 8883,
    "ws": 80,
    "wss": 443,
}
_TLS_SCHEMES: Final = frozenset({"mqtts", "ssl", "wss"})


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where a broker listens.

    Args:
        host: the host name or address.
        port: the TCP port.
        tls: whether to speak TLS.
        username: a user name taken from the URL, if any.
        password: a password taken from the URL, if any (never shown in reprs).
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Parse ``mqtt://[user[:password]@]host[:port]`` (also ``mqtts://``).

        Raises:
            ValueError: an unsupported scheme, a missing host or an invalid port. The message
                never repeats the password.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(
                f"unsupported broker URL scheme {scheme!r}: use mqtt:// or mqtts://"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the broker URL has an invalid port") from None
        if not parts.hostname:
            raise ValueError("the broker URL has no host")
        return cls(
            host=parts.hostname,
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            tls=scheme in _TLS_SCHEMES,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """How the client reconnects after an established connection is lost.

    Delays grow exponentially with *full jitter* (a random delay between 0 and
    ``min(max_delay, initial_delay * multiplier ** attempt)``), so a fleet of clients cut off by
    one broker restart does not come back in lock step.

    Args:
        initial_delay: the upper bound of the first delay, in seconds.
        max_delay: the largest delay, in seconds.
        multiplier: how fast the bound grows per attempt.
        max_attempts: give up after this many failed attempts in a row (``None``: never).
        give_up_after: give up when the connection has been down this many seconds (``None``:
            never).
        retry_first_connect: also retry the very first connection (wait for the broker to come
            up) instead of raising :class:`ConnectError` at once.
    """

    initial_delay: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_attempts: int | None = None
    give_up_after: float | None = None
    retry_first_connect: bool = False

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """The delay before attempt ``attempt`` (1-based); ``random()`` is uniform on [0, 1)."""
        bound = min(
            self.max_delay, self.initial_delay * self.multiplier ** min(attempt - 1, 64)
        )
        return bound * random()
