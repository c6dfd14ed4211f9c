"""The state machine, without an app."""
import pytest

from app.domain.status import (
    ALL_STATUSES,
    FINAL_STATUSES,
    MAIN_STAGES,
    Status,
    allowed_next_statuses,
    canonical_status,
    held_from_timeline,
    hold_releases,
    stage_index,
)

HAPPY_PATH = ["Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivered"]


def can_transition(current: str, requested: str, held_from: str | None = None) -> bool:
    return requested in allowed_next_statuses(current, held_from)


def test_happy_path_is_allowed_step_by_step():
    for current, following in zip(HAPPY_PATH, HAPPY_PATH[1:], strict=False):
        assert can_transition(current, following)


@pytest.mark.parametrize("current, requested", [
    ("In Transit", "In Transit"),  # a new hub
    ("Out for Delivery", "Delivery Attempted"),
    ("Delivery Attempted", "Out for Delivery"),
    ("Delivery Attempted", "Returned to Sender"),  # straight back, without a return leg
    ("Booked", "Cancelled"),
    ("Delivery Attempted", "RTO Initiated"),
    ("Delivery Attempted", "Delivered"),  # collected at the hub
    ("RTO Initiated", "RTO In Transit"),
    ("RTO In Transit", "RTO In Transit"),  # hub to hub on the way back
    ("RTO In Transit", "Returned to Sender"),
])
def test_exception_paths_are_allowed(current, requested):
    assert can_transition(current, requested)


def test_the_return_leg_goes_hub_to_hub_and_ends_returned_to_sender():
    assert allowed_next_statuses("Delivery Attempted") == [
        "Out for Delivery", "RTO Initiated", "Returned to Sender", "Delivered", "On Hold"]
    assert allowed_next_statuses("RTO Initiated") == ["RTO In Transit", "On Hold"]
    assert allowed_next_statuses("RTO In Transit") == ["RTO In Transit", "Returned to Sender", "On Hold"]
    assert "RTO Initiated" in ALL_STATUSES and "RTO In Transit" in ALL_STATUSES
    assert not {"RTO Initiated", "RTO In Transit"} & FINAL_STATUSES


@pytest.mark.parametrize("current, requested", [
    ("Booked", "Delivered"),
    ("Booked", "In Transit"),
    ("Picked Up", "Booked"),
    ("Picked Up", "Cancelled"),
    ("In Transit", "Picked Up"),
    ("Out for Delivery", "In Transit"),
    ("Booked", "Booked"),
    ("Out for Delivery", "RTO Initiated"),  # a failed attempt or a hold comes first
    ("In Transit", "RTO Initiated"),
    ("Booked", "RTO Initiated"),
    ("RTO Initiated", "Returned to Sender"),  # the return leg has at least one hub
    ("RTO Initiated", "RTO Initiated"),
    ("RTO In Transit", "Delivered"),
    ("RTO In Transit", "Out for Delivery"),
    ("RTO In Transit", "RTO Initiated"),
])
def test_skipping_or_going_back_is_refused(current, requested):
    assert not can_transition(current, requested)


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_final_statuses_allow_nothing(final):
    assert allowed_next_statuses(final) == []
    assert not can_transition(final, "On Hold")


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s not in FINAL_STATUSES and s != "On Hold"])
def test_every_non_final_status_can_be_put_on_hold(status):
    assert "On Hold" in allowed_next_statuses(status)


def test_on_hold_returns_to_where_it_came_from_or_starts_the_return_leg():
    assert allowed_next_statuses("On Hold", held_from="In Transit") == ["In Transit", "RTO Initiated"]
    assert not can_transition("On Hold", "Delivered", held_from="In Transit")
    assert not can_transition("On Hold", "On Hold", held_from="In Transit")
    assert allowed_next_statuses("On Hold", held_from=None) == []


@pytest.mark.parametrize("held_from, allowed", [
    ("Booked", ["Booked"]),  # still with the sender: released, then cancelled if need be
    ("Picked Up", ["Picked Up", "RTO Initiated"]),
    ("Out for Delivery", ["Out for Delivery", "RTO Initiated"]),
    ("Delivery Attempted", ["Delivery Attempted", "RTO Initiated"]),
    ("RTO Initiated", ["RTO Initiated"]),  # already going back: the hold only pauses it
    ("RTO In Transit", ["RTO In Transit"]),
])
def test_a_parcel_held_on_its_way_out_may_be_sent_back_from_the_hold(held_from, allowed):
    assert allowed_next_statuses("On Hold", held_from=held_from) == allowed


def test_final_statuses_are_exactly_the_three_in_the_design():
    assert {"Delivered", "Returned to Sender", "Cancelled"} == FINAL_STATUSES


def test_every_status_has_a_transition_entry_or_is_on_hold():
    for status in ALL_STATUSES:
        # raises KeyError if the table forgot a status
        allowed_next_statuses(status, held_from="Booked")


@pytest.mark.parametrize("typed, expected", [
    ("picked up", "Picked Up"), ("  OUT FOR   delivery ", "Out for Delivery"), ("Delivered", "Delivered"),
    ("Lost", None), ("", None),
])
def test_canonical_status(typed, expected):
    assert canonical_status(typed) == expected


def test_stage_index_places_exceptions_on_the_stage_they_interrupted():
    assert [stage_index(s) for s in MAIN_STAGES] == [0, 1, 2, 3, 4]
    assert stage_index("Delivery Attempted") == 3
    assert stage_index("On Hold", held_from="In Transit") == 2
    assert Status.DELIVERED.value == "Delivered"


@pytest.mark.parametrize("timeline, expected", [
    (["Booked", "On Hold"], "Booked"),
    (["Booked", "Picked Up", "In Transit", "On Hold"], "In Transit"),
    (["Booked", "On Hold", "Booked", "Picked Up", "On Hold"], "Picked Up"),
    (["On Hold"], None), ([], None),
])
def test_held_from_is_the_latest_status_that_is_not_on_hold(timeline, expected):
    assert held_from_timeline(timeline) == expected


@pytest.mark.parametrize("timeline, expected", [
    (["Booked", "On Hold", "Booked", "Picked Up"], [False, False, True, False]),
    (["Booked", "In Transit", "On Hold", "In Transit", "In Transit"], [False, False, False, True, False]),
    (["Booked", "On Hold"], [False, False]), ([], []),
])
def test_hold_releases_marks_the_event_that_ends_a_hold(timeline, expected):
    assert hold_releases(timeline) == expected
