"""The judging stage: case statistics, verdicts, scaling fits, leak trends, phase summaries and
growth against a baseline, all computed from measured runs in one pass (``stage.judge``)."""
