"""A patient's calendar kept equal to what the engine makes of everything recorded:
``rules.build_calendar(protocol, facts, infusions, results, events)``.

``sync`` gathers the facts (the patient's record and the events their adverse-event cases
stand for, ``case_events``), runs the engine and applies the difference. Imports
``records``, ``protocols``, ``kit`` and ``rules``; the feature packages call it.
"""
