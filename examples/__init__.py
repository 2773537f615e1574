"""Runnable examples (``boiler run examples.meeting_room:app``)."""
