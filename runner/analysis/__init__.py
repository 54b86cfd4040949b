"""Turning runs into answers: metrics across repeats, verdicts, and the scenario-level analyses."""
