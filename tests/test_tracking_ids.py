import re

import pytest

from app.services.tracking_ids import new_tracking_id, normalise_tracking_id


def test_new_ids_are_eight_uppercase_hex_characters():
    for _ in range(1000):
        assert re.fullmatch(r"[0-9A-F]{8}", new_tracking_id())


def test_new_ids_do_not_repeat_in_practice():
    ids = {new_tracking_id() for _ in range(20000)}
    assert len(ids) >= 19990  # birthday bound for 20k draws from 2**32 is ~0.05 collisions


@pytest.mark.parametrize("typed, expected", [
    ("a1b2c3d4", "A1B2C3D4"), ("  A1B2C3D4 \n", "A1B2C3D4"), ("A1B2C3D", None), ("A1B2C3D4E", None),
    ("G1B2C3D4", None), ("A1B2 C3D4", None), ("", None), ("'; DROP TABLE shipments;--", None),
])
def test_normalise_tracking_id(typed, expected):
    assert normalise_tracking_id(typed) == expected
