"""The clinical record: the tables of patients, their calendars, adverse-event cases and the
alert outbox, and the queries every feature asks of them (one function per question).

No services here: nothing in this package decides anything. Imports only ``kit``,
``errors`` and ``config``; the calendar and every feature package read and write through it.
"""
