"""`python -m sandbox`: the harness's command line."""

from sandbox.cli import app

app(prog_name="python -m sandbox")
