"""Sender: the outbound half of a link, between the machine's buffer and the byte stream.

Bytes leave in three ways, always in the order they were queued:

* Direct sends: a task that queues a packet while no write is in progress writes it itself
  (:meth:`ByteStream.try_send`, over a plain socket), so that a request-response exchange
  costs no task switch before the bytes leave. Only a couple are allowed between two reads
  (or writer sends), so a burst from tasks that do not yield is still one write. What the
  socket does not take is kept (``pending``) for the writer, and goes before anything queued
  later.
* The writer task (:meth:`start_writer` starts it among the link's tasks) sends everything
  queued in one ``send_all`` (:meth:`send_queued`), shielded so that an outside cancellation
  never leaves half a packet on the stream; only :meth:`abort` cuts it short. When the reader
  keeps the connection alive, an idle writer ends after :data:`WRITER_LINGER` (an idle
  connection is one task); otherwise it sleeps until the machine's next deadline and runs the
  link's keep-alive step.
* At close, :meth:`send_last` sends what is left from the closing task itself.

Tickets: :meth:`drain` waits until everything queued before it is with the stream;
:meth:`when_sent` calls back once the next write has taken what is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from ._stream import TRANSPORT_ERRORS, ByteStream
from ._tasks import LinkTasks
from ._wakeups import Wakeup

# How many times tasks may send directly between two reads (or writer sends): enough for a
# request-response exchange (say, the PUBACK of the message just taken, then the next PUBLISH),
# while a burst of packets from tasks that do not yield is left to the writer's single write.
DIRECT_SENDS = 2
# How long a writer with nothing to send waits for more before it ends (plain sockets).
WRITER_LINGER = 1.0


class SenderOwner(Protocol):
    """What the sender needs from its link (one reference, not five bound methods: memory
    per connection)."""

    def take_outbound(self) -> bytes:
        """What the machine queued (the machine notes the time, for keep alive)."""

    def more_outbound(self) -> bool:
        """Whether the machine has queued more since."""

    def next_deadline(self) -> float | None:
        """The machine's next keep-alive deadline."""

    def keepalive(self) -> None:
        """The keep-alive step at a deadline (may raise: the broker is gone)."""

    def reader_keeps_alive(self) -> bool:
        """Whether the reader keeps the connection alive (then an idle writer may end)."""

    def outbound_written(self) -> None:
        """Everything taken so far is with the stream (the machine's QoS 0 accounting)."""


class Sender:
    """Sends what the machine queued (``owner.take_outbound()`` drains it) over ``stream``."""

    __slots__ = (
        "_before_send", "_direct", "_direct_sends", "_lot", "_owner", "_queued", "_send_scope",
        "_sent", "_stream", "_tasks", "_wake", "_when_sent", "_writer_running",
        "pending", "writing",
    )  # fmt: skip

    def __init__(
        self,
        stream: ByteStream,
        *,
        owner: SenderOwner,
        before_send: Callable[[], None] | None,
    ) -> None:
        self._stream = stream
        self._owner = owner
        # the link's tasks, while they run
        self._tasks: LinkTasks | None = None
        self._wake = Wakeup()
        self._writer_running = False
        # a durable session's commit, before the wire sees what it covers
        self._before_send = before_send
        # Direct sends allowed between two reads: only over a plain socket, and none when each
        # send commits a durable session first (the writer batches: one commit, many packets).
        direct = stream.reads_cut_short and before_send is None
        self._direct_sends = DIRECT_SENDS if direct else 0
        self._direct = self._direct_sends  # left until the next read or write
        self.pending = (
            b""  # what a direct send left over, for the writer (read-only outside)
        )
        self.writing = False  # a task is inside send_all
        self._send_scope: trio.CancelScope | None = None
        self._queued = 0  # tickets handed out
        self._sent = 0  # tickets whose bytes are with the stream
        self._lot: trio.lowlevel.ParkingLot | None = (
            None  # drain() and send_last() waiters
        )
        self._when_sent: Callable[[], None] | None = None

    def attach(self, tasks: LinkTasks | None) -> None:
        """The link's tasks run (the writer is started among them), or have ended
        (``None``)."""
        self._tasks = tasks

    def start_writer(self) -> None:
        """Wake the writer, starting it if it is not running (and the link is)."""
        self._wake.set()
        if not self._writer_running and self._tasks is not None:
            self._writer_running = True
            self._tasks.start(self._writer)

    async def _writer(self) -> None:
        wake = self._wake
        try:
            while True:
                if wake.is_set():
                    # at once (a checkpoint: other tasks may queue more)
                    await wake.wait()
                elif self._owner.reader_keeps_alive():
                    # an idle writer ends; the next packet the tasks cannot send themselves
                    # starts one again
                    with trio.move_on_after(WRITER_LINGER) as idle:
                        await wake.wait()
                    if idle.cancelled_caught and not wake.is_set():
                        return
                else:
                    # The writer keeps the connection alive: it sleeps until woken or until
                    # the machine's next deadline (PINGREQ due, or PINGRESP overdue).
                    deadline = self._owner.next_deadline()
                    if deadline is None:
                        await wake.wait()
                    else:
                        with trio.move_on_at(deadline):
                            await wake.wait()
                        if trio.current_time() >= deadline:
                            self._owner.keepalive()
                if not await self.send_queued():
                    return  # aborted (see abort)
                if self._owner.more_outbound():
                    wake.set()  # the next chunk (a resent session), or what came meanwhile
        finally:
            self._writer_running = False

    def read_happened(self) -> None:
        """The reader read: direct sends are allowed again."""
        self._direct = self._direct_sends

    def detach(self) -> None:
        """No more direct sends: the stream is failing or closing."""
        self._direct_sends = self._direct = 0
        self._stream.detach()

    def flush(self) -> None:
        """Have what the machine queued sent: directly when allowed (see the module
        docstring), else by the writer."""
        if self._direct and not self.writing and not self.pending:
            self._direct -= 1
            self._send_now()
        else:
            self.start_writer()

    def _send_now(self) -> None:
        data = self._owner.take_outbound()
        if not data:
            return
        target = self._queued
        sent = self._stream.try_send(
            data
        )  # full or broken: the writer sends, or reports
        if sent < len(data):
            self.pending = data[sent:]
            self.start_writer()
        else:
            self._sent_up_to(target)
            if self._owner.more_outbound():
                self.start_writer()  # more was encoded meanwhile (see data_to_send)

    async def send_queued(self) -> bool:
        """The writer's step: send the pending bytes and everything queued, shielded; False
        if :meth:`abort` cut the write short (nothing more may be sent)."""
        target = self._queued
        data = self._owner.take_outbound()
        if data and self._before_send is not None:
            self._before_send()
        pending = self.pending
        if pending:
            self.pending = b""
            data = pending + data
        if data:
            self.writing = True
            try:
                with trio.CancelScope(shield=True) as scope:
                    self._send_scope = scope
                    await self._stream.send_all(data)
            finally:
                self.writing = False
                self._send_scope = None
                if self._lot:
                    self._lot.unpark_all()  # send_last() may wait for this write
            if scope.cancelled_caught:
                return False
            self._direct = self._direct_sends
        self._sent_up_to(target)
        return True

    def abort(self) -> None:
        """Cut a write in progress short."""
        if self._send_scope is not None:
            self._send_scope.cancel()

    def when_sent(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the next write has handed what is queued to the
        stream, and have it written: e.g. to queue more then."""
        self._when_sent = callback
        self.flush()

    async def drain(self, check: Callable[[], None]) -> None:
        """Wait until everything queued so far is with the stream; ``check()`` raises if the
        link has ended (it is called after every wake-up)."""
        self._queued += 1
        ticket = self._queued
        self.start_writer()
        while self._sent < ticket:
            check()
            await self._park()

    def wake_all(self) -> None:
        """Wake the waiters (the link failed: they see it in their ``check``)."""
        if self._lot:
            self._lot.unpark_all()

    async def _park(self) -> None:
        if self._lot is None:
            self._lot = trio.lowlevel.ParkingLot()
        await self._lot.park()

    def _sent_up_to(self, ticket: int) -> None:
        """Everything taken is with the stream (no write in progress, nothing pending)."""
        self._owner.outbound_written()
        self._sent = ticket
        if self._lot:
            self._lot.unpark_all()
        when_sent = self._when_sent
        if when_sent is not None:
            self._when_sent = None
            when_sent()

    async def send_last(self, failed: Callable[[], bool]) -> bool:
        """Send what is left from this task (the writer is stopped): after a write in progress
        (unless it ``failed()``), the pending bytes and then everything queued. Return
        whether it all went."""
        self.detach()  # this task is the last to write
        while self.writing:  # the writer's shielded write in progress
            await self._park()
        if failed():
            return False  # that write failed: the stream is broken
        data = self.pending + self._owner.take_outbound()
        self.pending = b""
        if not data:
            return True
        if self._before_send is not None:
            self._before_send()
        self.writing = True
        try:
            await self._stream.send_all(data)
        except TRANSPORT_ERRORS:
            return False  # the connection is gone anyway
        finally:
            self.writing = False
        self._sent_up_to(self._queued)
        return True
