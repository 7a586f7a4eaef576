"""The sans-IO protocol core: bytes in, packets and events out. No trio, no sockets, no clocks."""

from __future__ import annotations
