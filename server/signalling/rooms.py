"""Who is connected to which room on this node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.signalling.connection import Connection


def room_channel(room: str) -> str:
    return f"room:{room}"


@dataclass
class LiveRooms:
    rooms: dict[str, dict[str, Connection]] = field(default_factory=dict)

    def get(self, room: str, participant_id: str) -> Connection | None:
        return self.rooms.get(room, {}).get(participant_id)

    def add(self, room: str, connection: Connection) -> None:
        self.rooms.setdefault(room, {})[connection.participant_id] = connection

    def remove(self, room: str, connection: Connection) -> None:
        members = self.rooms.get(room)
        if members is not None and members.get(connection.participant_id) is connection:
            del members[connection.participant_id]
            if not members:
                del self.rooms[room]

    def members(self, room: str) -> list[Connection]:
        return list(self.rooms.get(room, {}).values())

    def count(self) -> int:
        return sum(len(m) for m in self.rooms.values())
