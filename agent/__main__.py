"""`python -m agent` runs the remediator CLI."""

from agent.cli import app

app(prog_name="remediator")
