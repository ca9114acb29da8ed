"""Arize monitors as the source of truth: enrich a breach, re-read an open incident's monitor
(CLEARED resolves, NO_DATA is reported) and mark the monitor with the incident's tag."""
