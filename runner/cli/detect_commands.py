"""``runner history detect`` (the level shifts of the store's series, with an exit code for CI)
and ``runner history accept`` (a shift's new level becomes the reference)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.errors import EXIT_OK, EXIT_SLA_FAILED, UsageError

FAIL_ON = ("regression", "change", "never")


def _metric(text: str | None) -> str | None:
    from runner.metrics import HISTORIED

    if text is not None and text not in HISTORIED:
        raise UsageError(f"--metric {text!r}: a history is kept of {', '.join(HISTORIED)}")
    return text


class DetectAction:
    """The level shifts of every series of a branch: per case and metric, the first commit of
    each new level, its size and p-value, and where a series broke (environment changed).

    Exit 0 with no regression that is not accepted, 1 when one is found (--fail-on
    regression, the default; change: any shift; never: always 0), 2 for bad input, 3 when
    the store cannot be read.
    """

    name = "detect"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--scenario", help="only this scenario")
        parser.add_argument("--case", help="only this case (build[pages=100])")
        parser.add_argument("--metric", help="only this metric (default: every one)")
        parser.add_argument("--branch", help="the main line (default: main, else the store's "
                                             "most recorded branch)")
        parser.add_argument("--fail-on", choices=FAIL_ON, default="regression",
                            help="what exits 1 (default regression)")
        parser.add_argument("--json", type=Path, metavar="PATH",
                            help="write the findings as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from runner.cli.history_commands import open_for
        from runner.history.base import default_branch
        from runner.history.detection import detect
        from runner.reports.history_text import render_detection

        metric = _metric(args.metric)
        with open_for(args) as store:
            branch = args.branch or default_branch(store)
            found = detect(store, branch=branch, scenario=args.scenario, case=args.case,
                           metric=metric)
        render_detection(found, sys.stdout)
        if args.json:
            args.json.write_text(found.model_dump_json(indent=1) + "\n", encoding="utf-8")
        failing = {"regression": found.regressions, "change": found.alerts,
                   "never": []}[args.fail_on]
        return EXIT_SLA_FAILED if failing else EXIT_OK


class AcceptAction:
    """Accept the level shift of a case's metric at a commit: from it on its new level is the
    reference, and detect no longer alerts it (nor do regression rules compare across it)."""

    name = "accept"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("scenario", help="the scenario")
        parser.add_argument("case", help="the case (build[pages=100])")
        parser.add_argument("metric", help="the metric (peak)")
        parser.add_argument("commit", help="the first commit of the new level (a sha or its "
                                           "start)")
        parser.add_argument("--note", default="", help="why (kept with the acceptance)")

    def run(self, args: argparse.Namespace) -> int:
        from runner.cli.history_commands import open_for
        from runner.history.detection import resolve_commit

        metric = _metric(args.metric)
        assert metric is not None
        with open_for(args) as store:
            try:
                sha = resolve_commit(store, args.scenario, args.case, metric, args.commit)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            store.accept(args.scenario, args.case, metric, sha, args.note)
        print(f"accepted: {args.case} {metric} at {sha[:10]}: from it on its level is the "
              "reference")
        return EXIT_OK
