"""Outcome catalogue, commitments, evaluation and verification.

This package owns the persistence base shared by every model (``outcomes.db``),
because it is the lowest layer that has a database: ``marketplace`` builds on it
and ``valuation`` stays free of any database.
"""
