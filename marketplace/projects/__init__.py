"""Projects: drafts, submission, expert valuation, listing, browsing, state history."""
