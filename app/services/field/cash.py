"""Cash on delivery settled: each courier's cash ledger for a day, the cash they hand in at the hub (remittances),
and a courier's end-of-day report.

Rules:
- A day is a local day in DISPLAY_TIMEZONE. Each record counts on the day of its own time: an event's
  occurred_at (the courier's own time for an offline action), a collection's collected_at (its event's time), a
  remittance's received_at.
- The courier's deliveries are the Delivered events whose actor is the courier (the courier app records the
  courier as the actor, whoever's run sheet the parcel was on). A parcel that staff marked Delivered is not the
  courier's.
- expected: the cod_amount of the cash-on-delivery parcels the courier delivered that day. collected: what the
  courier recorded collecting that day (cash and UPI; `collected_upi` says how much of it was UPI). remitted: the
  cash received from the courier at the hub that day.
- outstanding: the cash still with the courier at the end of that day: every cash collection up to then less every
  remittance up to then, carried over from earlier days. UPI reaches the company's account directly: it is
  collected, never outstanding.
- Flags, per delivered COD parcel: `shortfall` or `surplus` when the amount recorded with its Delivered event
  differs from its cod_amount, `not_recorded` when none was recorded (e.g. staff marked it Delivered for the
  courier); and `surplus_remitted` when the hub has received more cash than the courier collected up to the end of
  the day (outstanding below zero: typically collections still queued on the courier's phone).
- A remittance is cash handed in now: more than 0, to the paisa, at most ₹10,00,000 at once, with a reference (the
  receipt number) of 1 to 64 printable characters that this courier's remittances have not used before (a
  receipt recorded twice is a 409). More than the outstanding is recorded and flagged, not refused: the cash is
  in the hub's hands. Audited (`cod_remitted`). Remittances of one courier are serialised (their row is locked).
- Money is Decimal: sums are exact (added up in paise, integers, on both databases) and leave as "1250.00".
"""
from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, and_, case, cast, func, select

from app.domain.field import (
    CodFlag,
    cod_difference,
    path_length_m,
    remittance_amount_problem,
    remittance_reference_problem,
)
from app.domain.pricing import decimal_value, money, money_text
from app.domain.roles import Role
from app.domain.status import Status
from app.domain.timeutil import isoformat_z, local_day_start, to_local, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import CodCollection, CodRemittance, CourierPosition, DeliveryProof, Shipment, TrackingEvent, User
from app.services.shipments.exports import neutralise_formula
from app.services.shipments.queries import OLDEST_FIRST
from app.services.staff.audit import record_audit

ZERO = Decimal("0.00")
NO_REASON = "unspecified"  # an attempt recorded without a reason (the paper-compatible update asks for none)
CSV_COLUMNS = ("date", "courier", "expected", "collected", "collected_upi", "remitted", "outstanding", "flags")
_DAY_STATUSES = (Status.DELIVERED, Status.DELIVERY_ATTEMPTED, Status.PICKED_UP)


@dataclass(frozen=True)
class Day:
    """A local day as the UTC instants it spans, [start, end)."""
    date: date
    start: datetime
    end: datetime


def local_day(day: date | None, tz_name: str) -> Day:
    """`day` in the time zone `tz_name` (DISPLAY_TIMEZONE); None is today there."""
    day = day or to_local(utcnow(), tz_name).date()
    return Day(day, local_day_start(day, tz_name), local_day_start(day + timedelta(days=1), tz_name))


@dataclass(frozen=True)
class Flag:
    """Something about a courier's cash for the cashier to look at: a stop (`tracking_id`, what was due and what
    was collected, None when nothing was recorded), or the hub holding `amount` more than was collected."""
    kind: CodFlag
    tracking_id: str | None = None
    expected: Decimal | None = None
    collected: Decimal | None = None
    amount: Decimal | None = None

    def as_dict(self) -> dict:
        if self.kind == CodFlag.SURPLUS_REMITTED:
            return {"kind": self.kind.value, "amount": money_text(self.amount)}
        return {"tracking_id": self.tracking_id, "kind": self.kind.value, "expected": money_text(self.expected),
                "collected": None if self.collected is None else money_text(self.collected)}

    def summary(self) -> str:
        """One line for a CSV cell: "shortfall AB12CD34 expected 500.00 collected 450.00"."""
        if self.kind == CodFlag.SURPLUS_REMITTED:
            return f"{self.kind} {money_text(self.amount)}"
        collected = "" if self.collected is None else f" collected {money_text(self.collected)}"
        return f"{self.kind} {self.tracking_id} expected {money_text(self.expected)}{collected}"


@dataclass(frozen=True)
class Ledger:
    """One courier's cash for one day (see the module's rules)."""
    username: str
    expected: Decimal
    collected: Decimal
    collected_upi: Decimal
    remitted: Decimal
    outstanding: Decimal
    flags: tuple[Flag, ...]
    active: bool  # any COD delivery, collection or remittance that day

    def as_dict(self) -> dict:
        return {"username": self.username, **self.amounts(), "flags": [flag.as_dict() for flag in self.flags]}

    def amounts(self) -> dict[str, str]:
        return {"expected": money_text(self.expected), "collected": money_text(self.collected),
                "collected_upi": money_text(self.collected_upi), "remitted": money_text(self.remitted),
                "outstanding": money_text(self.outstanding)}


def cod_ledgers(day: Day) -> list[Ledger]:
    """The day's ledger of every courier with any cash activity that day or cash outstanding at its end, by
    username (deactivated couriers too: their cash is still owed)."""
    couriers = db.session.execute(select(User.id, User.username).where(User.role == Role.COURIER)
                                  .order_by(func.lower(User.username))).all()
    ledgers = _ledgers(day, {row.id: row.username for row in couriers})
    return [ledger for ledger in ledgers if ledger.active or ledger.outstanding != ZERO]


def cod_ledger_csv(day: Day, ledgers: list[Ledger]) -> str:
    """The ledgers as CSV, one row per courier, flags summarised in one cell. Text cells a spreadsheet would read
    as a formula are neutralised; amounts are our own numbers ("-200.00" stays a number)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for ledger in ledgers:
        amounts = ledger.amounts()
        writer.writerow([day.date.isoformat(), neutralise_formula(ledger.username),
                         *(amounts[name] for name in CSV_COLUMNS[2:7]),
                         neutralise_formula("; ".join(flag.summary() for flag in ledger.flags))])
    return buffer.getvalue()


# --- remittances -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """A remittance as recorded, with what the courier still holds after it and how much more than they held
    it was (None: not more)."""
    remittance: CodRemittance
    courier: str
    outstanding: Decimal
    surplus: Decimal | None

    def as_dict(self) -> dict:
        record = self.remittance
        return {"id": record.id, "courier": self.courier, "amount": money_text(record.amount),
                "reference": record.reference, "received_at": isoformat_z(record.received_at),
                "received_by": record.received_by, "outstanding": money_text(self.outstanding),
                "surplus_remitted": None if self.surplus is None else money_text(self.surplus)}


def record_remittance(username: str, amount: object, reference: str | None, *, actor: str) -> Receipt:
    """Record cash that `actor` received from the courier `username` now (see the module's rules). `amount` is as
    sent: a number or its text. NotFound for a username that is not a courier's, ValidationError naming each bad
    field, Conflict for a reference this courier's remittances already used."""
    courier = _courier(username, lock=True)
    value = decimal_value(amount)
    reference = (reference or "").strip()
    fields = {name: problem for name, problem in (("amount", remittance_amount_problem(value)),
                                                  ("reference", remittance_reference_problem(reference))) if problem}
    if fields:
        raise ValidationError(fields=fields)
    earlier = db.session.scalar(select(CodRemittance.id).where(
        CodRemittance.courier_id == courier.id, func.lower(CodRemittance.reference) == reference.lower()))
    if earlier is not None:
        raise Conflict(f"This courier's remittance {earlier} already has the reference {reference}.",
                       fields={"reference": "Already used for this courier."})
    held = _outstanding(courier.id)
    remittance = CodRemittance(courier_id=courier.id, amount=value, reference=reference, received_at=utcnow(),
                               received_by=actor)
    db.session.add(remittance)
    db.session.flush()
    # The part of this cash beyond what the courier held (all of it when the hub already held more).
    surplus = min(value, value - held) if value > held else None
    details = {"amount": money_text(value), "reference": reference}
    if surplus is not None:
        details["surplus_remitted"] = money_text(surplus)
    record_audit("cod_remitted", actor=actor, target_type="courier", target_id=courier.username, details=details)
    return Receipt(remittance, courier.username, held - value, surplus)


# --- a courier's day ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourierDay:
    """What a courier did on one day: parcels delivered, attempts by reason, pickups, their cash, the distance
    along their kept positions, and the cash they handed in."""
    username: str
    day: date
    delivered: int
    attempted: dict[str, int]
    picked_up: int
    cod: Ledger
    distance_m: float
    remittances: list[CodRemittance]

    @property
    def distance_km(self) -> str:
        """"12.34": kilometres to 10 metres."""
        return f"{self.distance_m / 1000:.2f}"

    def as_dict(self) -> dict:
        return {"username": self.username, "date": self.day.isoformat(), "delivered": self.delivered,
                "attempted": self.attempted, "picked_up": self.picked_up,
                "cod": {**self.cod.amounts(), "flags": [flag.as_dict() for flag in self.cod.flags]},
                "distance_km": self.distance_km,
                "remittances": [{"id": r.id, "amount": money_text(r.amount), "reference": r.reference,
                                 "received_at": isoformat_z(r.received_at), "received_by": r.received_by}
                                for r in self.remittances]}


def courier_day(username: str, day: Day) -> CourierDay:
    """The end-of-day report of the courier `username` (NotFound when that is not a courier)."""
    courier = _courier(username)
    counts: Counter[tuple[str, str | None]] = Counter()
    for status, reason, count in db.session.execute(
            select(TrackingEvent.status, DeliveryProof.attempt_reason, func.count())
            .outerjoin(DeliveryProof, DeliveryProof.event_id == TrackingEvent.id)
            .where(TrackingEvent.actor == courier.username, TrackingEvent.status.in_(_DAY_STATUSES),
                   *_within(TrackingEvent.occurred_at, day))
            .group_by(TrackingEvent.status, DeliveryProof.attempt_reason)):
        counts[(status, reason)] += count
    attempted = {reason or NO_REASON: count for (status, reason), count in sorted(
        counts.items(), key=lambda item: item[0][1] or "") if status == Status.DELIVERY_ATTEMPTED}
    return CourierDay(
        username=courier.username, day=day.date,
        delivered=sum(n for (status, _), n in counts.items() if status == Status.DELIVERED),
        attempted=attempted,
        picked_up=sum(n for (status, _), n in counts.items() if status == Status.PICKED_UP),
        cod=_ledgers(day, {courier.id: courier.username})[0],
        distance_m=path_length_m([(row.lat, row.lon) for row in db.session.execute(
            select(CourierPosition.lat, CourierPosition.lon)
            .where(CourierPosition.courier_id == courier.id, *_within(CourierPosition.at, day))
            .order_by(CourierPosition.at, CourierPosition.id))]),
        remittances=list(db.session.scalars(
            select(CodRemittance).where(CodRemittance.courier_id == courier.id,
                                        *_within(CodRemittance.received_at, day))
            .order_by(CodRemittance.received_at, CodRemittance.id))))


# --- the sums ----------------------------------------------------------------------------------------------------


def _courier(username: str, *, lock: bool = False) -> User:
    """The courier account `username` (any case); `lock` holds its row until the transaction ends."""
    query = select(User).where(func.lower(User.username) == username.strip().lower(), User.role == Role.COURIER)
    courier = db.session.scalars(query.with_for_update() if lock else query).first()
    if courier is None:
        raise NotFound("No such courier.")
    return courier


def _within(column, day: Day) -> tuple:
    return column >= day.start, column < day.end


def _paise(amount_column):
    """An amount as whole paise, so that a SUM is exact on SQLite too (it keeps numeric columns as floats)."""
    return cast(func.round(amount_column * 100), BigInteger)


def _rupees(paise: int | None) -> Decimal:
    return Decimal(paise or 0).scaleb(-2)


def _ledgers(day: Day, couriers: dict[int, str]) -> list[Ledger]:
    """The day's ledger of each courier (id → username), in the order given."""
    if not couriers:
        return []
    stops = _delivered_cod(day, list(couriers))
    collections = _collection_sums(day, list(couriers))
    remittances = _remittance_sums(day, list(couriers))
    ledgers = []
    for courier_id, username in couriers.items():
        delivered = stops.get(courier_id, [])
        collected_today, upi_today, cash_to_date, collections_today = collections.get(courier_id, (0, 0, 0, 0))
        remitted_today, remitted_to_date, remittances_today = remittances.get(courier_id, (0, 0, 0))
        outstanding = _rupees(cash_to_date) - _rupees(remitted_to_date)
        flags = [flag for flag in map(_stop_flag, delivered) if flag is not None]
        if outstanding < 0:
            flags.append(Flag(CodFlag.SURPLUS_REMITTED, amount=-outstanding))
        ledgers.append(Ledger(
            username=username, expected=money(sum((cod_amount for _, cod_amount, _ in delivered), ZERO)),
            collected=_rupees(collected_today), collected_upi=_rupees(upi_today),
            remitted=_rupees(remitted_today), outstanding=outstanding, flags=tuple(flags),
            active=bool(delivered or collections_today or remittances_today)))
    return ledgers


def _stop_flag(stop: tuple[str, Decimal, Decimal | None]) -> Flag | None:
    tracking_id, expected, collected = stop
    if collected is None:
        return Flag(CodFlag.NOT_RECORDED, tracking_id, expected)
    kind = cod_difference(expected, collected)
    return None if kind is None else Flag(kind, tracking_id, expected, collected)


def _delivered_cod(day: Day, courier_ids: list[int]) -> dict[int, list[tuple[str, Decimal, Decimal | None]]]:
    """Each courier's COD parcels delivered that day, in time order: (tracking ID, cod_amount, the amount
    collected with the Delivered event, None when none was recorded)."""
    rows = db.session.execute(
        select(User.id, Shipment.tracking_id, Shipment.cod_amount, CodCollection.collected)
        .select_from(TrackingEvent)
        .join(User, User.username == TrackingEvent.actor)
        .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
        .outerjoin(CodCollection, CodCollection.event_id == TrackingEvent.id)
        .where(User.id.in_(courier_ids), TrackingEvent.status == Status.DELIVERED, Shipment.payment == "cod",
               *_within(TrackingEvent.occurred_at, day))
        .order_by(*OLDEST_FIRST))
    stops: dict[int, list[tuple[str, Decimal, Decimal | None]]] = defaultdict(list)
    for courier_id, tracking_id, cod_amount, collected in rows:
        stops[courier_id].append((tracking_id, money(cod_amount or ZERO),
                                  None if collected is None else money(collected)))
    return stops


def _collection_sums(day: Day, courier_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """Per courier: paise collected that day, of which by UPI, paise collected in cash up to the day's end, and
    how many collections that day."""
    today = CodCollection.collected_at >= day.start
    paise = _paise(CodCollection.collected)
    rows = db.session.execute(
        select(CodCollection.courier_id,
               func.sum(case((today, paise), else_=0)),
               func.sum(case((and_(today, CodCollection.method == "upi"), paise), else_=0)),
               func.sum(case((CodCollection.method == "cash", paise), else_=0)),
               func.sum(case((today, 1), else_=0)))
        .where(CodCollection.courier_id.in_(courier_ids), CodCollection.collected_at < day.end)
        .group_by(CodCollection.courier_id))
    return {row[0]: tuple(int(value or 0) for value in row[1:]) for row in rows}


def _remittance_sums(day: Day, courier_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per courier: paise remitted that day, paise remitted up to the day's end, and how many remittances that
    day."""
    today = CodRemittance.received_at >= day.start
    paise = _paise(CodRemittance.amount)
    rows = db.session.execute(
        select(CodRemittance.courier_id, func.sum(case((today, paise), else_=0)), func.sum(paise),
               func.sum(case((today, 1), else_=0)))
        .where(CodRemittance.courier_id.in_(courier_ids), CodRemittance.received_at < day.end)
        .group_by(CodRemittance.courier_id))
    return {row[0]: tuple(int(value or 0) for value in row[1:]) for row in rows}


def _outstanding(courier_id: int) -> Decimal:
    """The cash the courier holds now: every cash collection less every remittance."""
    cash = select(func.sum(_paise(CodCollection.collected))).where(CodCollection.courier_id == courier_id,
                                                                  CodCollection.method == "cash")
    remitted = select(func.sum(_paise(CodRemittance.amount))).where(CodRemittance.courier_id == courier_id)
    return _rupees(db.session.scalar(cash)) - _rupees(db.session.scalar(remitted))
