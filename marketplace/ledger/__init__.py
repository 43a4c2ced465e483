"""The double-entry money ledger: every cent that moves, as balanced journal entries."""
