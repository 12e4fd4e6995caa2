"""Alerts: the policy (what is alerted, to whom), the outbox, the dispatcher, the scheduler.

The scan writes alert rows in set-based statements guarded by unique keys, so running it
twice, or on two machines at once, creates each alert once. The dispatcher claims rows,
delivers them through ``notifications`` and records every attempt.
"""
