"""Stripe's webhook endpoint: an edge that verifies, records and hands events on."""
