"""CSV import of bookings: every row checked, then all booked in one transaction or none."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Notification, Shipment, TrackingEvent
from app.services.shipments import booking as shipments_service

HEADER = "sender_name,receiver_name,mobile,email,destination"
GOOD_ROWS = [
    "Asha Rao,Vikram Nair,+91 98765 43210,vikram@example.com,Kochi",
    'Ravi Kumar,Meera Iyer,098765 43211,meera@example.com,"12 MG Road, Bengaluru 560001"',
]


def upload(client, auth, content: bytes | str, *, filename: str = "bookings.csv", html: bool = False):
    data = content.encode() if isinstance(content, str) else content
    headers = {**auth.headers(), **({"Accept": "text/html"} if html else {})}
    return client.post("/admin/imports", data={"file": (io.BytesIO(data), filename)}, headers=headers,
                       content_type="multipart/form-data")


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Shipment, TrackingEvent, Notification))


@pytest.fixture
def operator(auth):
    auth.login()
    return auth


def test_a_valid_file_books_every_row_with_its_event_email_and_one_audit_row(client, operator, app):
    response = upload(client, operator, "\n".join([HEADER, *GOOD_ROWS]) + "\n")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["created"] == 2 and len(body["tracking_ids"]) == 2
    assert counts(app) == (2, 2, 2)
    with app.app_context():
        shipments = {s.tracking_id: s for s in db.session.scalars(select(Shipment))}
        first, second = (shipments[t] for t in body["tracking_ids"])
        assert (first.receiver_name, first.mobile, first.status) == ("Vikram Nair", "+919876543210", "Booked")
        assert second.destination == "12 MG Road, Bengaluru 560001" and second.mobile == "+919876543211"
        events = db.session.scalars(select(TrackingEvent)).all()
        assert {e.actor for e in events} == {"operator1"}
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "shipments_imported")).one()
        assert audit.details["count"] == 2 and audit.actor == "operator1"


def test_semicolons_a_bom_columns_in_any_order_and_blank_lines(client, operator, app):
    content = ("\ufeffDestination;Email;Mobile;Receiver_Name;Sender_Name\r\n"
               "Kochi;a@example.com;9876543210;A B;C D\r\n\r\n")
    response = upload(client, operator, content.encode("utf-8"))
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        shipment = db.session.scalars(select(Shipment)).one()
        assert (shipment.sender_name, shipment.receiver_name, shipment.destination) == ("C D", "A B", "Kochi")


def test_any_bad_row_books_nothing_and_every_bad_row_is_listed_with_its_line(client, operator, app):
    content = "\n".join([HEADER, GOOD_ROWS[0], "Asha,,12,not-an-email,Kochi", GOOD_ROWS[1],
                         "Asha,Vikram,080 2222 3333x,v@example.com,"])
    response = upload(client, operator, content)
    assert response.status_code == 400
    body = response.get_json()
    assert [row["line"] for row in body["rows"]] == [3, 5]
    assert {"receiver_name", "mobile", "email"} <= set(body["rows"][0]["fields"])
    assert "destination" in body["rows"][1]["fields"]
    assert counts(app) == (0, 0, 0)
    with app.app_context():
        # Only the staff account's creation and sign-in are on record.
        assert db.session.scalars(select(AuditEntry).where(
            AuditEntry.action.not_in(("user_created", "login")))).all() == []


def test_the_page_lists_bad_rows_then_a_good_file_offers_labels_and_ids(client, operator, app):
    page = client.get("/admin/imports", headers={"Accept": "text/html"})
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.data
    bad = upload(client, operator, HEADER + "\nAsha,Vikram,12,v@example.com,Kochi\n", html=True)
    assert bad.status_code == 400
    assert b"Nothing was imported" in bad.data and b'<th scope="row" data-label="Line">2</th>' in bad.data
    good = upload(client, operator, "\n".join([HEADER, *GOOD_ROWS]), html=True)
    assert good.status_code == 201
    assert b"2 shipments booked" in good.data and b"Print labels" in good.data
    with app.app_context():
        ids = sorted(db.session.scalars(select(Shipment.tracking_id)))
    csv_response = client.post("/admin/imports/tracking-ids.csv",
                               data={"tracking_ids": " ".join(ids), "csrf_token": operator.csrf_token})
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(csv_response.get_data(as_text=True))))
    assert sorted(r["tracking_id"] for r in rows) == ids


def test_the_tracking_ids_csv_neutralises_formulas_in_names_and_destinations(client, operator, app):
    rows = ['Asha Rao,"=HYPERLINK(""http://evil.example"")",+91 98765 43210,v@example.com,"-2+3, Kochi"',
            'Ravi Kumar,@SUM(A1),098765 43211,m@example.com,"+1 Kochi"',
            'Ravi Kumar,Meera Iyer,098765 43212,m@example.com,"=A1, Kochi"']
    assert upload(client, operator, "\n".join([HEADER, *rows])).status_code == 201
    with app.app_context():
        ids = list(db.session.scalars(select(Shipment.tracking_id)))
    response = client.post("/admin/imports/tracking-ids.csv",
                           data={"tracking_ids": " ".join(ids), "csrf_token": operator.csrf_token})
    assert response.status_code == 200
    cells = {(r["receiver_name"], r["destination"])
             for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    assert cells == {("'=HYPERLINK(\"http://evil.example\")", "'-2+3, Kochi"), ("'@SUM(A1)", "'+1 Kochi"),
                     ("Meera Iyer", "'=A1, Kochi")}


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("sender_name,receiver_name,mobile,email\nA,B,9876543210,a@example.com\n", "header"),
    (HEADER + ",extra\nA,B,9876543210,a@example.com,Kochi,x\n", "header"),
    (HEADER + "\n", "no bookings"),
    (HEADER + "\nA,B,9876543210,a@example.com\n", "cannot be read"),
    (b"\xff\xfe" + HEADER.encode("utf-16-le"), "UTF-8"),
    (HEADER + '\nA,"B,9876543210,a@example.com,Kochi\n', "CSV"),
    (HEADER + "\nA\x00,B,9876543210,a@example.com,Kochi\n", "not a text"),
])
def test_files_that_are_not_booking_csv_are_400(client, operator, app, content, message):
    response = upload(client, operator, content)
    assert response.status_code == 400
    body = response.get_json()
    assert message.lower() in (body["error"] + " " + " ".join(body.get("fields", {}).values())).lower()
    assert counts(app) == (0, 0, 0)


def test_no_file_too_many_rows_and_too_large(client, operator, app):
    assert client.post("/admin/imports", data={}, headers=operator.headers()).status_code == 400
    many = "\n".join([HEADER] + ["A,B,9876543210,a@example.com,Kochi"] * 20_001)
    response = upload(client, operator, many)
    assert response.status_code == 400 and "20000" in response.get_json()["error"]
    huge = HEADER + "\n" + ("A," * 3_000_000)
    assert upload(client, operator, huge).status_code in (400, 413)
    assert counts(app) == (0, 0, 0)


def test_import_needs_csrf_and_an_operator(client, auth, app):
    auth.login("support1", role="viewer")
    assert upload(client, auth, "\n".join([HEADER, *GOOD_ROWS])).status_code == 403
    assert client.get("/admin/imports").status_code == 403
    auth.logout()
    auth.login("operator2")
    no_token = client.post("/admin/imports", data={"file": (io.BytesIO(b"x"), "b.csv")},
                           content_type="multipart/form-data")
    assert no_token.status_code == 400
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize("body", [False, [], {"file": "x"}])
def test_a_json_body_is_a_400_not_a_500(client, operator, app, body):
    response = client.post("/admin/imports", json=body, headers=operator.headers())
    assert response.status_code == 400 and "file" in response.get_json()["fields"]
    assert counts(app) == (0, 0, 0)


def test_every_row_keeps_only_its_own_messages(client, operator, app):
    content = "\n".join([HEADER, "Asha,,12,not-an-email,Kochi", GOOD_ROWS[0], "Asha,Vikram,9876543210,v@example.com,",
                         "A,B,080 2222 3333,c@example.com,Kochi"])
    response = upload(client, operator, content)
    assert response.status_code == 400
    assert [(row["line"], sorted(row["fields"])) for row in response.get_json()["rows"]] == [
        (2, ["email", "mobile", "receiver_name"]), (4, ["destination"]), (5, ["mobile"])]
    assert counts(app) == (0, 0, 0)


def imported_rows(app) -> list[tuple]:
    """Each shipment with its events and emails, as (tracking_id, receiver, mobile, [(event status, actor)],
    [(recipient, subject, event is the shipment's)])."""
    with app.app_context():
        rows = []
        for shipment in db.session.scalars(select(Shipment).order_by(Shipment.id)):
            events = db.session.scalars(select(TrackingEvent).where(TrackingEvent.shipment_id == shipment.id)).all()
            emails = db.session.scalars(select(Notification).where(Notification.shipment_id == shipment.id)).all()
            rows.append((shipment.tracking_id, shipment.receiver_name, shipment.mobile,
                         [(e.status, e.location, e.actor) for e in events],
                         [(n.recipient, n.subject, n.state, n.event_id == events[0].id,
                           n.next_attempt_at == events[0].occurred_at == shipment.created_at) for n in emails]))
        return rows


def test_a_file_larger_than_a_round_is_booked_in_file_order_each_row_with_its_own_event_and_email(
        client, operator, app, monkeypatch):
    monkeypatch.setattr(shipments_service, "BULK_CHUNK", 2)
    lines = [f"Sender {n},Receiver {n},+91 98765 4321{n},r{n}@example.com,Kochi" for n in range(5)]
    response = upload(client, operator, "\n".join([HEADER, *lines]))
    assert response.status_code == 201, response.get_json()
    tracking_ids = response.get_json()["tracking_ids"]
    assert imported_rows(app) == [
        (tracking_ids[n], f"Receiver {n}", f"+91987654321{n}", [("Booked", "Origin Facility", "operator1")],
         [(f"r{n}@example.com", f"Shipment {tracking_ids[n]}: Booked", "pending", True, True)])
        for n in range(5)]


def test_tracking_id_collisions_draw_again_for_the_rows_they_hit(client, operator, app, monkeypatch):
    taken = client.post("/create", json={"sender_name": "A", "receiver_name": "B", "mobile": "9876543210",
                                         "email": "b@example.com", "destination": "Kochi"}).get_json()["tracking_id"]
    # Row 1 hits the stored ID, rows 2 and 3 draw the same ID, then both draw the stored ID again.
    draws = iter([taken, "0000000A", "0000000A", taken, taken, "0000000B", "0000000C"])
    monkeypatch.setattr(shipments_service, "new_tracking_id", lambda: next(draws))
    response = upload(client, operator, "\n".join([HEADER, *GOOD_ROWS, GOOD_ROWS[0]]))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["tracking_ids"] == ["0000000B", "0000000A", "0000000C"]
    assert counts(app) == (4, 4, 4)
    booked = {row[0]: row for row in imported_rows(app)}
    assert [booked[t][1] for t in ("0000000B", "0000000A", "0000000C")] == ["Vikram Nair", "Meera Iyer", "Vikram Nair"]
    assert all(row[4][0][1] == f"Shipment {tracking_id}: Booked" for tracking_id, row in booked.items())


def test_a_row_that_finds_no_free_tracking_id_books_nothing(client, operator, app, monkeypatch):
    taken = client.post("/create", json={"sender_name": "A", "receiver_name": "B", "mobile": "9876543210",
                                         "email": "b@example.com", "destination": "Kochi"}).get_json()["tracking_id"]
    fresh = iter(f"{n:08X}" for n in range(1, 100))
    draws = iter([next(fresh), taken, taken, taken, taken, taken])  # row 2 never gets a free ID
    monkeypatch.setattr(shipments_service, "new_tracking_id", lambda: next(draws, None) or next(fresh))
    monkeypatch.setattr(shipments_service, "BULK_CHUNK", 1)  # row 1 is booked in a round of its own first
    response = upload(client, operator, "\n".join([HEADER, *GOOD_ROWS]))
    assert response.status_code == 409 and "tracking ID" in response.get_json()["error"]
    assert counts(app) == (1, 1, 1)
    with app.app_context():
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "shipments_imported")).all() == []
