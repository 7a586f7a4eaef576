"""Single-waiter synchronisation for the hot paths, cheaper than :class:`trio.Event`.

A ``trio.Event`` carries a parking lot (an ordered dict) and is single-use, so code that waits
once per message or per write would allocate one each time. These primitives serve exactly one
waiting task, allocate nothing per use, and reschedule the waiter directly.
"""

from __future__ import annotations

import trio


class Wakeup:
    """A reusable, allocation-free wake-up for one waiting task (the writer): :meth:`set` is
    remembered until the next :meth:`wait` returns. Lighter than a new trio.Event per wake."""

    __slots__ = ("_pending", "_task")

    def __init__(self) -> None:
        self._pending = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        self._pending = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def is_set(self) -> bool:
        return self._pending

    async def wait(self) -> None:
        """Return once set (at once if it already is), and clear it. A checkpoint."""
        if self._pending:
            self._pending = False
            await trio.lowlevel.checkpoint()
            return
        self._task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        self._pending = False


class Flag:
    """A level-triggered flag with at most one waiter: once :meth:`set`, :meth:`wait` returns
    at once (a checkpoint) forever after."""

    __slots__ = ("_set", "_task")

    def __init__(self) -> None:
        self._set = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        self._set = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        """Return once set. A checkpoint. Only one task may wait at a time."""
        if self._set:
            await trio.lowlevel.checkpoint()
            return
        if self._task is not None:
            raise RuntimeError("Flag.wait() supports one waiting task")
        self._task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


class Waiters:
    """A :class:`trio.lowlevel.ParkingLot` that keeps count of its waiters in a plain int, so
    that the hot path can test ``if waiters.count:`` instead of calling into the lot, and wakes
    nobody it has already woken. The lot is made when a task first waits: most never see one
    (the router's, while nothing backs up), and an empty lot holds 240 bytes."""

    __slots__ = ("_lot", "count")

    def __init__(self) -> None:
        self._lot: trio.lowlevel.ParkingLot | None = None
        self.count = 0  # tasks parked and not yet woken

    async def wait(self) -> None:
        """Park until :meth:`wake_one` or :meth:`wake_all` (a cancellation point)."""
        lot = self._lot
        if lot is None:
            lot = self._lot = trio.lowlevel.ParkingLot()
        self.count += 1
        try:
            await lot.park()
        except BaseException:
            self.count -= 1  # cancelled while parked: nobody woke (or counted) us
            raise

    def wake_one(self) -> None:
        if self.count:
            assert self._lot is not None  # a task waits in it
            self.count -= len(self._lot.unpark())

    def wake_all(self) -> None:
        if self.count:
            assert self._lot is not None
            self.count -= len(self._lot.unpark_all())
