"""What the handlers return: frames to send, and what happened (pure data)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    """A network device as netlink reports it."""
    name: str
    ifindex: int
    mac: str


@dataclass(frozen=True)
class Frame:
    tap: str            # sent on this device's packet socket
    data: bytes


@dataclass(frozen=True)
class Answer:
    """The outcome for one packet from a bound tap: ``kind`` names the reply sent, or why not."""
    kind: str                       # offer, ack, nak, inform, ra, na, dhcpv6-reply; or ignored-*
    frames: tuple[Frame, ...] = ()
    lease: dict | None = field(default=None, compare=False)


def ignored(why):
    return Answer(f"ignored-{why}")
