"""LinkTasks, the link's helper tasks run in the client's nursery (trio_mqtt/_io/_tasks.py): it
must keep the promises a nursery of the link's own kept, since the link relies on them to
never outlive its run() (issue #19 removed that nursery for memory)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from trio_mqtt._io._tasks import LinkTasks


async def _plain(task: Callable[[], Awaitable[None]]) -> None:
    await task()


async def test_cancel_reaches_a_task_started_but_not_yet_run() -> None:
    steps: list[str] = []

    async def task() -> None:
        steps.append("ran")
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            steps.append("cancelled")
            raise

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            tasks = LinkTasks(nursery, _plain)
            tasks.start(task)
            tasks.cancel()  # before the task's first step
            await tasks.wait()
            assert steps == ["ran", "cancelled"]


async def test_wait_returns_only_once_every_task_has_ended() -> None:
    release = trio.Event()
    ended: list[int] = []

    async def task(n: int) -> None:
        with trio.CancelScope(shield=True):  # as the writer's send_all
            await release.wait()
        ended.append(n)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            tasks = LinkTasks(nursery, _plain)
            for n in range(3):
                tasks.start(lambda n=n: task(n))
            await trio.testing.wait_all_tasks_blocked()
            tasks.cancel()
            waiter_done = trio.Event()

            async def waiter() -> None:
                await tasks.wait()
                waiter_done.set()

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            try:
                assert not waiter_done.is_set()  # the shielded writes still run
            finally:
                release.set()  # (a failure must not leave them blocked)
            await waiter_done.wait()
            assert sorted(ended) == [0, 1, 2]


async def test_wait_is_shielded_from_the_callers_cancellation() -> None:
    release = trio.Event()
    order: list[str] = []

    async def task() -> None:
        with trio.CancelScope(shield=True):
            await release.wait()
        order.append("task ended")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            tasks = LinkTasks(nursery, _plain)
            tasks.start(task)
            await trio.testing.wait_all_tasks_blocked()

            async def caller() -> None:
                with trio.CancelScope() as scope:
                    scope.cancel()  # the caller is cancelled (the application left)
                    tasks.cancel()
                    await tasks.wait()
                    order.append("wait returned")

            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            try:
                assert order == []
            finally:
                release.set()
        assert order == ["task ended", "wait returned"]


async def test_each_task_runs_under_the_guard_and_a_stray_error_reaches_the_nursery() -> (
    None
):
    caught: list[BaseException] = []

    async def guard(task: Callable[[], Awaitable[None]]) -> None:
        try:
            await task()
        except ValueError as exc:  # the link's errors: its failure, not the nursery's
            caught.append(exc)

    async def link_error() -> None:
        raise ValueError("the link's")

    async def bug() -> None:
        raise KeyError("a bug")

    with pytest.raises(ExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            tasks = LinkTasks(nursery, guard)
            tasks.start(link_error)
            tasks.start(bug)
            await tasks.wait()
    assert [str(e) for e in caught] == ["the link's"]
    assert info.group_contains(KeyError)
