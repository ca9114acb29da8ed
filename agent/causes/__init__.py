"""Causes: one page and one Slack thread for incidents that share a diagnosis on one dependency."""
