"""The demo data of the original documents: one meeting, three participants."""

from __future__ import annotations

from boiler.database import Database

from .domain import Location, Meeting, Ticket, User

PARTICIPANTS = {
    "tijuana": ("Tijuana", "Furlong", "UCSD", True, "Organizer", True),
    "thomasina": ("Thomasina", "Manes", "UCSD", False, "Participant", True),
    "joshua": ("Joshua", "Pendergrast", "SDSU", True, "Speaker", False),
}


def is_empty(db: Database) -> bool:
    """True when there is no meeting yet."""
    return not db.query(db.collection("meetings").limit(1))


def seed(db: Database) -> None:
    """Write the demo documents in one batch."""
    batch = db.batch()
    Location.new(
        doc_id="location_1",
        latitude=32.880361,
        longitude=-117.242929,
        address="9500 Gilman Drive, La Jolla, CA",
    ).save(batch=batch)
    tickets = {}
    for uid, (first, last, org, aid, role, attends) in PARTICIPANTS.items():
        User.new(
            doc_id=uid,
            first_name=first,
            last_name=last,
            organization=org,
            hearing_aid_requested=aid,
        ).save(batch=batch)
        ticket = Ticket.new(
            doc_id=f"ticket_{uid}", role=role, attendance=attends, user=f"users/{uid}"
        )
        ticket.save(batch=batch)
        tickets[uid] = ticket.doc_ref
    Meeting.new(
        doc_id="meeting_1",
        location="locations/location_1",
        users=[f"users/{uid}" for uid in PARTICIPANTS],
        tickets=tickets,
        status="in-session",
    ).save(batch=batch)
    batch.commit()
