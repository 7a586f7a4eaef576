"""The waiting primitives of the hot paths (trio_mqtt/_sync.py)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_mqtt._io._wakeups import Flag, Waiters, Wakeup


async def test_wakeup_remembers_a_set_until_the_next_wait() -> None:
    wakeup = Wakeup()
    wakeup.set()
    wakeup.set()  # two sets before a wait are one wake-up
    with trio.fail_after(1):
        await wakeup.wait()
    assert not wakeup.is_set()
    with trio.move_on_after(0.01) as scope:  # nothing pending now: it blocks
        await wakeup.wait()
    assert scope.cancelled_caught


async def test_wakeup_wakes_a_sleeping_waiter() -> None:
    wakeup = Wakeup()
    woken: list[bool] = []

    async def waiter() -> None:
        await wakeup.wait()
        woken.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        wakeup.set()
    assert woken == [True]


async def test_wakeup_wait_is_cancellable_and_then_reusable() -> None:
    wakeup = Wakeup()
    with trio.move_on_after(0.01):
        await wakeup.wait()
    wakeup.set()  # the cancelled waiter is gone: this is remembered for the next one
    with trio.fail_after(1):
        await wakeup.wait()


async def test_flag_stays_set_and_takes_one_waiter() -> None:
    flag = Flag()

    async def waiter(
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        await flag.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(waiter)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="one waiting task"):
            await flag.wait()
        flag.set()
    assert flag.is_set()
    with trio.fail_after(1):
        await flag.wait()
        await flag.wait()  # level-triggered: still set


async def test_waiters_count_only_tasks_still_parked() -> None:
    waiters = Waiters()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await waiters.wait()
        woken.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(waiter, n)
        await trio.testing.wait_all_tasks_blocked()
        assert waiters.count == 3
        waiters.wake_one()
        assert waiters.count == 2  # counted off at once, before the task runs
        waiters.wake_one()
        waiters.wake_one()
        waiters.wake_one()  # nobody left: a no-op
        assert waiters.count == 0
    assert sorted(woken) == [0, 1, 2]


async def test_waiters_forget_a_cancelled_waiter() -> None:
    waiters = Waiters()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiters.wait)
        nursery.start_soon(waiters.wait)
        await trio.testing.wait_all_tasks_blocked()
        assert waiters.count == 2
        nursery.cancel_scope.cancel()
    assert waiters.count == 0
    waiters.wake_all()
    assert waiters.count == 0
