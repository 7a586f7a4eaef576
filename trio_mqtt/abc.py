"""The extension points: what an application implements for trio-mqtt to call.

* :class:`SessionStore` keeps a session's in-flight state (a Redis or file store: implement its
  abstract methods; :class:`SavedSession` is what :meth:`SessionStore.load` returns).
* :class:`Authenticator` answers the broker's MQTT 5 enhanced-authentication challenges.

The same classes are importable from ``trio_mqtt``; this namespace gathers them.
"""

from __future__ import annotations

from ._auth import Authenticator as Authenticator
from ._engine._stores import SavedSession as SavedSession, SessionStore as SessionStore

__all__ = ["Authenticator", "SavedSession", "SessionStore"]
