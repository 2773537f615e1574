"""The meeting-room domain: users, locations, tickets and meetings.

Documents written by other programs (no ``obj_type``/``doc_id``/``doc_ref``)
load as these classes, keyed by their collection.
"""

from __future__ import annotations

from boiler import attrs
from boiler.domain_model import DomainModel

STATUSES = ("in-session", "closed", "not-started")


class User(DomainModel):
    class Meta:
        collection_name = "users"

    first_name = attrs.bproperty(type=str)
    last_name = attrs.bproperty(type=str)
    organization = attrs.bproperty(type=str)
    hearing_aid_requested = attrs.bproperty(type=bool)


class Location(DomainModel):
    class Meta:
        collection_name = "locations"

    latitude = attrs.bproperty(type=float)
    longitude = attrs.bproperty(type=float)
    address = attrs.bproperty(type=str)


class Ticket(DomainModel):
    class Meta:
        collection_name = "tickets"

    role = attrs.bproperty(type=str)
    attendance = attrs.bproperty(type=bool)
    user = attrs.relation(dm_cls=User)


class Meeting(DomainModel):
    class Meta:
        collection_name = "meetings"

    location = attrs.relation(dm_cls=Location)
    users = attrs.relation(dm_cls=User, collection=list)
    tickets = attrs.relation(dm_cls=Ticket, collection=dict)
    status = attrs.bproperty(type=str, validate=lambda s: s in STATUSES)
