"""Signals to a running room's game: sent by other tasks (the control API's
``POST /v1/rooms/{id}/signal``), answered on the room's task.

A signal travels through the room's control channel like a join (nakama's
``signalCh`` beside ``joinAttemptCh``), so the game hears it at a tick
boundary, never in the middle of a step, and in the order it came with the
joins and closes. The caller waits on a one-slot reply channel under a
timeout; a signal given up (timeout, cancellation) is marked abandoned and
the room skips it, so the game never acts on a signal whose sender was told
it failed. The game's side (``on_signal``, its failure policy, the answer's
size bound) is tickroom.server.rooms.game_hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from tickroom.server.rooms.game_hooks import GameHooks, SignalError

SIGNAL_TIMEOUT_S = 2.0  # a signal the room has not answered by then is given up (never delivered)
MAX_PENDING_SIGNALS = 8  # per room, waiting for the next tick; more: "room_busy"


@dataclass(eq=False)
class SignalRequest:
    """One signal in the room's control channel, with its one-slot reply channel."""

    data: Mapping[str, Any]
    reply: trio.MemorySendChannel
    abandoned: bool = False  # the caller gave up: the game never sees it


class RoomSignals:
    """The signals of one room: ``send`` from any task, ``answer`` and
    ``refuse`` on the room's task. Holds no world state; the room owns the
    control channel and closes it."""

    def __init__(self, room_id: str, control: trio.MemorySendChannel, hooks: GameHooks) -> None:
        self.room_id = room_id
        self._control = control
        self._hooks = hooks
        self.pending = 0  # signals sent, not yet answered or given up

    async def send(self, data: Mapping[str, Any], *, closing: bool, timeout_s: float) -> Any:
        """Queue ``data`` for the game and wait for its answer.

        ``closing``: the room has ended or is ending (refused at once).
        Raises SignalError: room_busy (MAX_PENDING_SIGNALS already wait, or
        the inbox is full), room_closing, signal_timeout (no answer in
        ``timeout_s``: the signal is then never delivered), and the game's own
        signal_unsupported / signal_failed. Cancellation withdraws the signal
        the same way.
        """
        if closing:
            raise SignalError("room_closing", f"room {self.room_id!r} is closing")
        if self.pending >= MAX_PENDING_SIGNALS:
            raise SignalError("room_busy", f"{MAX_PENDING_SIGNALS} signals already wait for this room's next tick")
        reply_send, reply_recv = trio.open_memory_channel(1)
        request = SignalRequest(data, reply_send)
        try:
            self._control.send_nowait(request)
        except trio.WouldBlock:
            raise SignalError("room_busy", "the room's inbox is full") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise SignalError("room_closing", f"room {self.room_id!r} is closing") from None
        self.pending += 1
        try:
            with trio.move_on_after(timeout_s):
                result = await reply_recv.receive()
                if isinstance(result, SignalError):
                    raise result
                return result
        except trio.EndOfChannel:
            raise SignalError("room_closing", f"room {self.room_id!r} closed") from None
        finally:
            request.abandoned = True  # answered, timed out or cancelled: never (again) to the game
            self.pending -= 1
        raise SignalError("signal_timeout", f"room {self.room_id!r} did not answer in {timeout_s:g} s")

    def answer(self, request: SignalRequest) -> None:
        """On the room's task: the game's answer (or its SignalError) to the
        caller; a request its caller gave up is dropped unseen."""
        if request.abandoned:
            return
        try:
            answer: Any = self._hooks.signal(request.data)
        except SignalError as exc:
            answer = exc
        self._reply(request, answer)

    def refuse(self, request: SignalRequest) -> None:
        """On the room's task, as it ends: tell the caller the room closed."""
        self._reply(request, SignalError("room_closing", f"room {self.room_id!r} closed"))

    @staticmethod
    def _reply(request: SignalRequest, answer: Any) -> None:
        try:
            request.reply.send_nowait(answer)
        except (trio.WouldBlock, trio.BrokenResourceError):
            pass  # the caller went away: nobody to tell
