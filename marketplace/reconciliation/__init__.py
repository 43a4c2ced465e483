"""Reconciliation: the books, our rows and Stripe's objects compared; the money invariants."""
