"""India's PIN code directory, offline: well-formed PIN codes, finding one in a destination, and the directory's
district, state and centroid of real PIN codes. No database and no app: pure functions and bundled data."""
from __future__ import annotations

import gzip
import socket

import indian_pincode
import pytest

from app.domain.pincodes import PinInfo, normalise_pincode, pincode_from_destination, place_name
from app.services.shipments import pincodes
from app.services.shipments.pincodes import (
    CENTROIDS,
    CENTROIDS_SNAPSHOT,
    directory_size,
    directory_version,
    is_valid_pincode,
    pincode_info,
)


@pytest.mark.parametrize("value, expected", [
    ("682016", "682016"), (" 682016 ", "682016"), ("682 016", "682016"), (682016, "682016"),
    ("000000", None), ("012345", None), ("68201", None), ("6820166", None), ("68 2016", None), ("682-016", None),
    ("", None), (None, None), (True, None), ("６８２０１６", None), ("६८२०१६", None), ("682016\n", "682016"),
])
def test_a_well_formed_pincode_is_six_ascii_digits_not_starting_with_0(value, expected):
    assert normalise_pincode(value) == expected


@pytest.mark.parametrize("destination, expected", [
    ("12 MG Road, Kochi 682016", "682016"),
    ("14 Marine Drive, Ernakulam, Kochi 682031", "682031"),
    ("Flat 4, 22 MG Road, Thrissur - 680 001", "680001"),
    ("House 123456, Kochi 682016, India", "682016"),  # the last group, not the first
    ("Plot 560001, near the bus stand", "560001"),
    ("Call 9876543210 at the gate, Kochi", None),  # ten digits are a phone number, not a PIN code
    ("Kochi", None), ("", None), (None, None),
    ("Village 000000", "000000"),  # found as written; whether it is real is the directory's question
])
def test_the_pincode_of_a_destination_is_its_last_six_digit_group(destination, expected):
    assert pincode_from_destination(destination) == expected


@pytest.mark.parametrize("name, expected", [
    ("ERNAKULAM", "Ernakulam"), ("NEW DELHI", "New Delhi"), ("KAIMUR (BHABUA)", "Kaimur (Bhabua)"),
    ("ANDAMAN AND NICOBAR ISLANDS", "Andaman and Nicobar Islands"), ("Y.S.R.", "Y.S.R."),
    ("THE DADRA AND NAGAR HAVELI AND DAMAN AND DIU", "The Dadra and Nagar Haveli and Daman and Diu"),
    ("JANJGIR-CHAMPA", "Janjgir-Champa"), ("24 PARAGANAS NORTH", "24 Paraganas North"),
])
def test_directory_names_are_written_as_people_write_them(name, expected):
    assert place_name(name) == expected


def test_kochi_and_new_delhi_are_found_with_district_state_and_centroid():
    kochi = pincode_info("682001")
    assert (kochi.pincode, kochi.city, kochi.state) == ("682001", "Ernakulam", "Kerala")
    assert 9.9 < kochi.lat < 10.1 and 76.2 < kochi.lon < 76.4
    delhi = pincode_info("110001")
    assert (delhi.city, delhi.state) == ("New Delhi", "Delhi")
    assert 28.5 < delhi.lat < 28.7 and 77.1 < delhi.lon < 77.3
    assert pincode_info("682 016") == pincode_info(682016) == pincode_info(" 682016")
    assert isinstance(kochi, PinInfo)


@pytest.mark.parametrize("pin", ["000000", "999999", "111111", "68201", "abcdef", "", None])
def test_a_pincode_no_post_office_has_is_not_in_the_directory(pin):
    assert pincode_info(pin) is None
    assert is_valid_pincode(pin) is False


def test_valid_means_in_the_directory():
    assert is_valid_pincode("682001") and is_valid_pincode("110001") and is_valid_pincode("682 016")


def test_a_destination_leads_to_its_district():
    assert pincode_info(pincode_from_destination("12 MG Road, Kochi 682016")).city == "Ernakulam"


def test_the_directory_is_india_posts_whole_and_the_centroids_are_its_own_snapshot():
    """The centroids vendored beside the code were taken from the directory package's own snapshot: a new
    package version without new centroids fails here (data/README.md says how to refresh them)."""
    assert directory_version() == CENTROIDS_SNAPSHOT
    assert 19_000 < directory_size() < 21_000
    with gzip.open(CENTROIDS, "rt", encoding="utf-8") as rows:
        assert next(rows).strip() == "pincode,latitude,longitude"
        listed = [line.split(",", 1)[0] for line in rows]
    assert listed == sorted(listed) and len(set(listed)) == len(listed)
    assert len(listed) > 0.98 * directory_size()
    assert all(is_valid_pincode(pin) for pin in listed[::97])
    assert CENTROIDS.stat().st_size < 256 * 1024  # a compact file
    assert (CENTROIDS.parent / "pincode-centroids.LICENSE").read_text().count("GODL-India") >= 1


def test_every_centroid_is_in_india():
    pincodes._load_centroids()
    for lat, lon in pincodes._centroids.values():
        assert 6 <= lat <= 37.5 and 68 <= lon <= 97.5


def test_a_pincode_without_a_centroid_still_has_district_and_state():
    with gzip.open(CENTROIDS, "rt", encoding="utf-8") as rows:
        with_centroid = {line.split(",", 1)[0] for line in rows}
    missing = next(pin for pin in indian_pincode.get_pincodes() if pin not in with_centroid)
    info = pincode_info(missing)
    assert info.city and info.state and info.lat is None and info.lon is None


def test_a_pincode_whose_district_or_state_the_directory_lacks_is_still_in_it():
    without_district = next(pin for pin in indian_pincode.get_pincodes() if not indian_pincode.get_districts(pin))
    info = pincode_info(without_district)
    assert info is not None and info.city is None and is_valid_pincode(without_district)
    without_state = next(pin for pin in indian_pincode.get_pincodes() if not indian_pincode.get_state(pin))
    assert pincode_info(without_state).state is None


def test_the_directory_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the PIN code directory must not touch the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(pincodes, "_centroids", None)  # read the bundled file again, with the network gone
    assert pincode_info("560001").state == "Karnataka"
    assert pincode_info("560001").lat is not None
