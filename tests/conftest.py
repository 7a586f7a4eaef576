from __future__ import annotations

import os
import signal

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# A suite started in the background by a non-interactive shell (`bash scripts/test &`)
# inherits SIGINT ignored, and Trio then leaves Ctrl-C alone: the tests of what the client
# does on Ctrl-C (test_lifecycle, test_cli) would hang to their timeouts, in this process and
# in the programs it starts (an ignored signal stays ignored across exec). Handle it as an
# interactive run does; the programs started then get the default disposition back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
