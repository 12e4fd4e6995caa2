"""Infrastructure with no clinical knowledge: database engines and transactions, migrations,
set-based writes, the clock, SQL column types, optimistic concurrency, the audit chain,
job leases, iCalendar and text tables.

May import only ``surveillance.errors`` and ``surveillance.config``; every other package
of ``surveillance`` may import it.
"""
