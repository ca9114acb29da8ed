"""The scored scenario evaluation: play scenarios against the sandbox, compare with expected."""
