"""Follow-up work on patients: enrolment, outcomes, changes of status and infusion,
appointments, protocol amendments; and what nurses and investigators read (the due list,
a patient's calendar, compliance figures, a site's calendar feed).

Imports ``calendar``, ``accounts``, ``records``, ``protocols`` and ``kit``. Knows nothing
of adverse events or alerts: those packages build on this one.
"""
