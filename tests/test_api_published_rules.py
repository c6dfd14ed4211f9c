"""The OpenAPI document says what the API enforces, so a request that matches it is not refused for its form: text
without control characters, the region's mobile numbers, https:// webhook URLs by host name, attempt reasons and
the proof each status needs, cursors, and every status an operation can answer (the Idempotency-Key's 409 and 422,
the 400 of a refused webhook URL). Where the document and the checks disagreed, the checks were fixed: a note in a
bulk change may hold line breaks as a single change's may, an unknown attempt reason is refused whatever the
status, and any cursor of the published form is a position."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.services.shipments.contacts import ContactError, normalise_mobile
from app.services.shipments.proofs import ATTEMPT_REASONS
from tests.api_support import bearer, book

CONTROL = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"]
REQUEST_BODIES = ("NewShipment", "NewEvent", "NewEvents", "NewBulkEvent", "NewWebhook")


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").get_json()


@pytest.fixture
def key(issue_key) -> dict[str, str]:
    return bearer(issue_key("integrator", role="operator"))


def schemas(document: dict) -> dict:
    return document["components"]["schemas"]


def matches(pattern: str, value: str) -> bool:
    """As a JSON Schema validator reads `pattern` (ECMA-262: `$` is the end of the text, not before a last \\n)."""
    return re.search(pattern.removesuffix("$") + r"\Z", value) is not None


def string_pattern(prop: dict) -> str | None:
    """The pattern a string value of this property must match (pydantic puts it beside `anyOf` when the field is
    optional: it applies to the string branch)."""
    return prop.get("pattern") or next((o.get("pattern") for o in prop.get("anyOf", ()) if "pattern" in o), None)


def string_properties(document: dict):
    for model in REQUEST_BODIES:
        for name, prop in schemas(document)[model]["properties"].items():
            kinds = {prop.get("type")} | {o.get("type") for o in prop.get("anyOf", ())}
            if "string" in kinds and "enum" not in prop and not any("enum" in o for o in prop.get("anyOf", ())) \
                    and prop.get("format") is None and not any(o.get("format") for o in prop.get("anyOf", ())):
                yield model, name, prop


# --- the document -------------------------------------------------------------------------------------------------

def test_every_text_field_of_a_request_refuses_control_characters(document):
    checked = set()
    for model, name, prop in string_properties(document):
        pattern = string_pattern(prop)
        assert pattern, (model, name)
        for character in CONTROL:
            assert not matches(pattern, f"a{character}b"), (model, name, repr(character))
        assert matches(pattern, "Kochi Hub 🚚") or model == "NewWebhook" or name in {
            "mobile", "email", "sender_mobile", "sender_email", "sender_pincode", "destination_pincode"}, (model, name)
        lines = matches(pattern, "line one\nline two")
        assert lines == (name in {"note", "customer_message", "tracking_id"}), (model, name)
        checked.add((model, name))
    assert {("NewShipment", "sender_name"), ("NewEvent", "location"), ("NewEvent", "note"),
            ("NewBulkEvent", "tracking_id"), ("NewWebhook", "description")} <= checked
    tracking_id = document["paths"]["/api/v1/shipments/{tracking_id}"]["get"]["parameters"][0]["schema"]
    assert not matches(tracking_id["pattern"], "3EE0\x00AFAD") and matches(tracking_id["pattern"], "3ee0-afad")


def test_a_required_text_that_is_stripped_may_not_be_blank(document):
    pattern = schemas(document)["NewShipment"]["properties"]["sender_name"]["pattern"]
    for blank in (" ", "\u00a0", "\u3000 \u2003"):
        assert not matches(pattern, blank) and blank.strip() == ""
    assert matches(pattern, " Asha Rao ")


def test_the_mobile_is_described_by_the_default_regions_numbering_plan(app, document):
    from app.services.shipments.contacts import mobile_pattern

    booking = schemas(document)["NewShipment"]["properties"]["mobile"]
    listing = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/shipments"]["get"]["parameters"]}
    expected = mobile_pattern(app.config["DEFAULT_PHONE_REGION"])
    assert booking["pattern"] == listing["mobile"]["pattern"] == expected
    assert "x-waybill-mobile" not in str(document)
    for written in ("+919876543210", "+91 9876543210", "09876543210", "9876543210"):
        assert matches(expected, written), written
    for not_a_mobile in ("0", "12", "+91 80 2222 3333", "04422223333", "98765\n43210"):
        assert not matches(expected, not_a_mobile), not_a_mobile


@pytest.mark.parametrize("region", ["IN", "US", "GB", "AE"])
def test_every_number_the_published_pattern_allows_is_a_mobile_the_app_accepts(app, region):
    from app.services.shipments.contacts import mobile_pattern

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(mobile_pattern(region), fullmatch=True))
    def accepted(number: str) -> None:
        try:
            assert normalise_mobile(number, region).startswith("+")
        except ContactError as refused:
            raise AssertionError(f"{number!r}: {refused}") from None

    with app.test_request_context():
        accepted()


def test_attempt_reasons_are_an_enum_and_each_proof_is_required_with_its_status(document):
    for model in ("NewEvent", "NewBulkEvent"):
        reason = schemas(document)[model]["properties"]["attempt_reason"]
        assert [o.get("enum") for o in reason["anyOf"] if o.get("type") == "string"] == [list(ATTEMPT_REASONS)]
    single = schemas(document)["NewEvent"]
    rules = {rule["if"]["properties"]["status"]["const"]: rule["then"] for rule in single["allOf"]}
    assert rules["Delivered"]["required"] == ["received_by"]
    assert rules["Delivery Attempted"]["required"] == ["attempt_reason"]
    assert rules["Delivery Attempted"]["properties"]["attempt_reason"]["enum"] == list(ATTEMPT_REASONS)
    assert not matches(rules["Delivered"]["properties"]["received_by"]["pattern"], "  ")
    # In a bulk call a change without its proof is refused on its own (a 200 naming it), not the whole request.
    assert "allOf" not in schemas(document)["NewBulkEvent"]


def test_webhook_urls_are_https_by_host_name_and_a_refused_url_is_a_documented_400(document):
    pattern = schemas(document)["NewWebhook"]["properties"]["url"]["pattern"]
    for accepted in ("https://hooks.example.com/waybill?token=abc", "HTTPS://Example.org:8443", "https://a.io/"):
        assert matches(pattern, accepted), accepted
    for refused in ("http://hooks.example.com/", "ftp://example.com/", "https://127.1/", "https://127.0.0.1/",
                    "https://[::1]/", "https://localhost/", "https://0x7f.1/", "https://2130706433/",
                    "https://user:pw@example.com/", "https://example.com:65536/", "https://example.com/a b",
                    "0000"):
        assert not matches(pattern, refused), refused
    subscribe = document["paths"]["/api/v1/webhooks"]["post"]
    assert "400" in subscribe["responses"] and "`url`" in subscribe["description"]


def test_every_operation_with_an_idempotency_key_documents_its_409_and_422(document):
    idempotent = [(path, method, spec) for path, methods in document["paths"].items()
                  for method, spec in methods.items()
                  if any(p["name"] == "Idempotency-Key" for p in spec.get("parameters", ()))]
    assert [(path, method) for path, method, _ in idempotent] == [("/api/v1/shipments", "post")]
    for _, _, spec in idempotent:
        assert {"409", "422"} <= set(spec["responses"])
        assert "Idempotency-Key" in spec["responses"]["422"]["description"]
        assert "Idempotency-Key" in spec["responses"]["409"]["description"]


def test_the_cursor_has_a_published_form(document):
    listing = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/shipments"]["get"]["parameters"]}
    assert matches(listing["cursor"]["pattern"], "1733550000123456.42")
    assert not matches(listing["cursor"]["pattern"], "bm90LWEtY3Vyc29y")


# --- the checks agree with the document ---------------------------------------------------------------------------


def test_a_note_in_a_bulk_change_may_hold_line_breaks_as_a_single_changes_may(app, client, key):
    tracking_id = book(app)
    change = {"tracking_id": tracking_id, "status": "Picked Up", "location": "Hub",
              "note": "Left at the gate.\nCall first.", "customer_message": "Picked up.\r\nThank you."}
    response = client.post("/api/v1/events", json={"changes": [change]}, headers=key)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1
    still_refused = client.post("/api/v1/events", headers=key, json={"changes": [
        {**change, "location": "Hub\nTwo"}]})
    assert still_refused.status_code == 400 and "changes" in still_refused.get_json()["errors"]


def test_an_unknown_attempt_reason_is_refused_whatever_the_status(app, client, key):
    tracking_id = book(app)
    response = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                           json={"status": "Picked Up", "location": "Hub", "attempt_reason": "asleep"})
    assert response.status_code == 400 and "attempt_reason" in response.get_json()["errors"]
    assert client.get(f"/api/v1/shipments/{tracking_id}", headers=key).get_json()["status"] == "Booked"


def test_any_cursor_of_the_published_form_is_a_position(app, client, key):
    for _ in range(3):
        book(app)
    first = client.get("/api/v1/shipments?limit=2", headers=key).get_json()
    cursor = first["next"].split("cursor=", 1)[1]
    assert re.fullmatch(r"[0-9]{1,17}\.[0-9]{1,18}", cursor)
    second = client.get(f"/api/v1/shipments?limit=2&cursor={cursor}", headers=key).get_json()
    assert len(first["shipments"]) == 2 and len(second["shipments"]) == 1 and second["next"] is None
    for made_up in ("0.0", "99999999999999999.999999999999999999"):
        assert client.get(f"/api/v1/shipments?cursor={made_up}", headers=key).status_code == 200
    assert client.get("/api/v1/shipments?cursor=0.-1", headers=key).status_code == 400


def test_the_email_pattern_describes_addresses_the_app_accepts(document):
    from app.services.shipments.contacts import normalise_email

    pattern = schemas(document)["NewShipment"]["properties"]["email"]["pattern"]
    for address in ("arjun.menon@example.org", "a+b@mail.co.in"):
        assert matches(pattern, address) and normalise_email(address)
    for refused in ("a@5ik.test", "a@x.local", "a@host.arpa", "a@ab--cd.com", "a@localhost"):
        assert not matches(pattern, refused), refused
