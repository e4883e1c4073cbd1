"""What the handlers return: frames to send, and what happened (pure data).

The records made for every packet are NamedTuples: as immutable and typed as a frozen
dataclass, but made in a fifth of the time, and dhcpd makes several per packet.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Link:
    """A network device as netlink reports it."""
    name: str
    ifindex: int
    mac: str


class Frame(NamedTuple):
    tap: str            # sent on this device's packet socket
    data: bytes


class Answer(NamedTuple):
    """The outcome for one packet from a bound tap: ``kind`` names the reply sent, or why not."""
    kind: str                       # offer, ack, nak, inform, ra, na, dhcpv6-reply; or ignored-*
    frames: tuple[Frame, ...] = ()
    lease: Mapping | None = None    # for an ACK: the lease event's fields but node and time


def ignored(why):
    return Answer(f"ignored-{why}")
