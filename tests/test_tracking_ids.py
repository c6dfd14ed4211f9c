import re

import pytest

from app.domain.tracking_ids import new_tracking_id, normalise_tracking_id, normalise_tracking_id_prefix


def test_new_ids_are_eight_uppercase_hex_characters():
    for _ in range(1000):
        assert re.fullmatch(r"[0-9A-F]{8}", new_tracking_id())


@pytest.mark.parametrize("typed, expected", [
    ("a1b2c3d4", "A1B2C3D4"), ("  A1B2C3D4 \n", "A1B2C3D4"), ("A1B2C3D", None), ("A1B2C3D4E", None),
    ("G1B2C3D4", None), ("", None), ("'; DROP TABLE shipments;--", None),
    # as copied from a label or typed: spaces and hyphens anywhere, O for zero
    ("3EE0 AFAD", "3EE0AFAD"), ("3ee0-afad", "3EE0AFAD"), (" 3E E0\tAF\u00a0AD ", "3EE0AFAD"),
    ("3EEO AFAD", "3EE0AFAD"), ("3eeo-afad", "3EE0AFAD"), ("3EE0\u2013AFAD", "3EE0AFAD"),
    ("3EE0 AFA", None), ("3EE0_AFAD", None), ("3EE0.AFAD", None), ("OOOO OOOO", "00000000"),
])
def test_normalise_tracking_id(typed, expected):
    assert normalise_tracking_id(typed) == expected


@pytest.mark.parametrize("typed, expected", [
    ("94a6", "94A6"), ("94a6-f8", "94A6F8"), ("94A6 F8F8", "94A6F8F8"), ("9O4", "904"), ("94", None),
    ("94A6F8F8A", None), ("Meera", None), ("", None),
])
def test_normalise_tracking_id_prefix(typed, expected):
    assert normalise_tracking_id_prefix(typed) == expected
