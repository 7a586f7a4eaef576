"""``python -m trio_mqtt``: the ``trio-mqtt`` command (docs/cli.md)."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
