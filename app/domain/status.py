"""The shipment state machine, as data."""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    BOOKED = "Booked"
    PICKED_UP = "Picked Up"
    IN_TRANSIT = "In Transit"
    OUT_FOR_DELIVERY = "Out for Delivery"
    DELIVERED = "Delivered"
    DELIVERY_ATTEMPTED = "Delivery Attempted"
    ON_HOLD = "On Hold"
    RTO_INITIATED = "RTO Initiated"
    RTO_IN_TRANSIT = "RTO In Transit"
    RETURNED_TO_SENDER = "Returned to Sender"
    CANCELLED = "Cancelled"


ALL_STATUSES: tuple[str, ...] = tuple(s.value for s in Status)

# The five stages a customer sees as a progress bar.
MAIN_STAGES: tuple[str, ...] = (
    Status.BOOKED, Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED,
)

FINAL_STATUSES: frozenset[str] = frozenset({Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED})

# The return leg ("return to origin"): a parcel that will not be delivered goes back to its sender, hub to hub,
# and ends Returned to Sender.
RETURN_LEG: frozenset[str] = frozenset({Status.RTO_INITIATED, Status.RTO_IN_TRANSIT})

# Forward moves. On Hold is reachable from every non-final status and returns to where it came from (or takes
# one of HOLD_EXITS), so it is added by allowed_next_statuses rather than listed here.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.BOOKED: (Status.PICKED_UP, Status.CANCELLED),
    Status.PICKED_UP: (Status.IN_TRANSIT,),
    Status.IN_TRANSIT: (Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY),
    Status.OUT_FOR_DELIVERY: (Status.DELIVERED, Status.DELIVERY_ATTEMPTED),
    # Returned to Sender straight after an attempt is the short way back, without a tracked return leg.
    # Delivered straight after an attempt: collected at the hub (the recipient chose pickup_at_hub, app.services.ndr).
    Status.DELIVERY_ATTEMPTED: (Status.OUT_FOR_DELIVERY, Status.RTO_INITIATED, Status.RETURNED_TO_SENDER,
                                Status.DELIVERED),
    Status.RTO_INITIATED: (Status.RTO_IN_TRANSIT,),
    Status.RTO_IN_TRANSIT: (Status.RTO_IN_TRANSIT, Status.RETURNED_TO_SENDER),
    Status.DELIVERED: (),
    Status.RETURNED_TO_SENDER: (),
    Status.CANCELLED: (),
}

# Where an On Hold shipment may go besides back to the status it was held from, by that status: a parcel held
# anywhere on its way out, once picked up, may be sent back to its sender from where it is held. (Held at
# Booked it is still with the sender: it is released and cancelled instead. Held on the return leg, it goes
# back to it.)
HOLD_EXITS: dict[str, tuple[str, ...]] = {
    Status.PICKED_UP: (Status.RTO_INITIATED,),
    Status.IN_TRANSIT: (Status.RTO_INITIATED,),
    Status.OUT_FOR_DELIVERY: (Status.RTO_INITIATED,),
    Status.DELIVERY_ATTEMPTED: (Status.RTO_INITIATED,),
}


def canonical_status(value: str) -> str | None:
    """The canonical spelling of a status name given in any letter case, or None if unknown."""
    folded = " ".join(value.split()).casefold()
    for status in ALL_STATUSES:
        if status.casefold() == folded:
            return status
    return None


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def allowed_next_statuses(current: str, held_from: str | None = None) -> list[str]:
    """Statuses a shipment in `current` may move to.

    `held_from` is the status a shipment had before it was put On Hold; an On Hold shipment may go back to it,
    or to the exits HOLD_EXITS lists for it.
    """
    if current == Status.ON_HOLD:
        if not held_from:
            return []
        return [held_from, *(str(s) for s in HOLD_EXITS.get(held_from, ()))]
    if current in FINAL_STATUSES:
        return []
    return [str(s) for s in TRANSITIONS[current]] + [Status.ON_HOLD.value]


def held_from_timeline(statuses: Iterable[str]) -> str | None:
    """The status a shipment On Hold was held from: the latest status of its timeline (oldest first) that is
    not On Hold. The one statement of the rule for a loaded timeline; its one SQL form is
    app.services.shipments.queries.held_from_query."""
    return next((s for s in reversed(list(statuses)) if s != Status.ON_HOLD), None)


def hold_releases(statuses: Iterable[str]) -> list[bool]:
    """For each status of a timeline (oldest first), whether that event released a hold: it follows an On Hold
    event and is not one itself. Such an event repeats the status held from ("Booked" after "Booked, On Hold"),
    so a timeline says "Hold released" for it instead."""
    released, previous = [], None
    for status in statuses:
        released.append(previous == Status.ON_HOLD and status != Status.ON_HOLD)
        previous = status
    return released


def stage_index(status: str, held_from: str | None = None) -> int:
    """Position on the five-stage progress bar (0-based); exceptions sit at the stage they interrupted."""
    effective = held_from if status == Status.ON_HOLD and held_from else status
    if effective == Status.DELIVERY_ATTEMPTED:
        effective = Status.OUT_FOR_DELIVERY
    if effective in MAIN_STAGES:
        return MAIN_STAGES.index(effective)
    return 0
