"""Adverse events: cases, versions, the pharmacovigilance feed."""
