"""LinkTasks: a link's helper tasks (the writer, the start-up step), run in the client's nursery.

Why not a nursery of the link's own. An idle connection over a plain socket runs no task but
its reader (the writer ends when it has nothing to send, the start-up step once the session is
restored), yet a nursery lives as long as the link: a ``Nursery``, its ``CancelScope`` and that
scope's ``CancelStatus``, with three sets between them, 1.1 KiB of every idle connection's
14 KiB (measured with tracemalloc; issue #19). This object costs nothing while no task runs:
each task brings its own cancel scope, and drops it when it ends.

It keeps the promise a nursery keeps, for the link: :meth:`cancel` stops every task it
started, and :meth:`wait` returns only once they have all ended, so a link never outlives
its ``run()``. It does not catch the tasks' errors: each runs as ``guard(task)``, the link's
guard, which turns the link's errors into its failure. Anything else (a bug) reaches the
client's nursery and ends the client, as it ended the link's nursery before.

The exception to the design (a task started in a nursery its starter does not own) is kept
to this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

Task = Callable[[], Awaitable[None]]
Guard = Callable[[Task], Awaitable[None]]


class LinkTasks:
    """The tasks one link started in ``nursery``, each run as ``guard(task)``."""

    __slots__ = ("_cancelled", "_done", "_guard", "_nursery", "_running", "_scopes")

    def __init__(self, nursery: trio.Nursery, guard: Guard) -> None:
        self._nursery = nursery
        self._guard = guard
        # started and not yet ended (some may not have run a step yet), and the scopes of
        # those that have
        self._running = 0
        # (a dict: once empty again, the garbage collector stops tracking it)
        self._scopes: dict[trio.CancelScope, None] = {}
        self._cancelled = False
        self._done: trio.Event | None = None  # a waiter's, set when the last task ends

    def start(self, task: Task) -> None:
        """Start ``task`` (cancelled at once if :meth:`cancel` came already)."""
        self._running += 1
        self._nursery.start_soon(self._run, task)

    async def _run(self, task: Task) -> None:
        try:
            with trio.CancelScope() as scope:
                if self._cancelled:
                    scope.cancel()
                self._scopes[scope] = None
                try:
                    await self._guard(task)
                finally:
                    del self._scopes[scope]
        finally:
            self._running -= 1
            if not self._running and self._done is not None:
                self._done.set()

    def cancel(self) -> None:
        """Cancel every task, those started but not yet running included."""
        self._cancelled = True
        for scope in self._scopes:
            scope.cancel()

    async def wait(self) -> None:
        """Wait until every task has ended, shielded, as a nursery's exit waits.

        The tasks are cancelled first (see :meth:`cancel`), so the wait is short: only the
        writer's shielded write can hold it, and the link's close aborts that within its
        grace period.
        """
        with trio.CancelScope(shield=True):
            while self._running:
                done = self._done = trio.Event()
                await done.wait()
            self._done = None
