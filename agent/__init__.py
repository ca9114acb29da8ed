"""Incident remediation agent for LLM services."""

__version__ = "0.1.0"
