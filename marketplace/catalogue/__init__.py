"""The outcome catalogue and the valuation calculator, on the web and in the API."""
