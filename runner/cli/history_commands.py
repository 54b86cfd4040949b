"""``runner history``: the recorded checks (list), a case's metric over commits (show), a check
in a benchmark tracker's format (export), the store's copy on a git branch (pull, push), past
commits measured (backfill) and the first bad one found (bisect). One class per action,
registered in HISTORY_ACTIONS."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runner import backends
from runner.cli.detect_commands import AcceptAction, DetectAction
from runner.errors import EXIT_OK, EXIT_SLA_FAILED, UsageError
from runner.units import format_count

if TYPE_CHECKING:
    from runner.history.backfill import CheckOptions
    from runner.history.store import Store

DEFAULT_STORE = ".memsla/history.db"
EXPORT_FORMATS = {"bencher": "bencher", "github-action-benchmark": "customSmallerIsBetter"}


class Action(Protocol):
    name: str

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def store_url(args: argparse.Namespace) -> str:
    return str(args.history or os.environ.get("MEMSLA_HISTORY") or DEFAULT_STORE)


def open_for(args: argparse.Namespace, create: bool = False) -> Store:
    from runner.history.store import open_store

    return open_store(store_url(args), create=create)


class ListAction:
    """The recorded checks, newest first: id, when, commit, branch, status, cases, values."""

    name = "list"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=20, metavar="N",
                            help="the newest N checks (default 20; 0: all)")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def run(self, args: argparse.Namespace) -> int:
        with open_for(args) as store:
            checks = store.checks(args.limit or None)
        for check in checks:
            commit = check.commit
            if args.json:
                print(json.dumps({"id": check.id, "recorded": check.recorded,
                                  "commit": commit.model_dump() if commit else None,
                                  "status": check.status, "memsla": check.memsla,
                                  "sla_file": check.sla_file, "cases": check.cases,
                                  "values": check.values}, sort_keys=True))
                continue
            print("  ".join([check.id[:12], check.recorded[:19].replace("T", " "),
                             commit.short if commit else "-" * 10,
                             (commit.branch if commit else None) or "-", check.status,
                             format_count(check.cases, "case"), format_count(check.values, "value"),
                             (commit.subject[:50] if commit else "")]).rstrip())
        if not checks and not args.json:
            print("no checks recorded")
        return EXIT_OK


class ShowAction:
    """A case's metric over commits: each commit's values (every repeat) and their median,
    one block per environment (a series breaks where the environment changed)."""

    name = "show"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("case", help="a case (build[pages=100]) or a scenario (all its "
                                         "cases)")
        parser.add_argument("--metric", default="peak", help="the metric (default peak)")
        parser.add_argument("--branch", help="only checks of this branch")
        parser.add_argument("--json", action="store_true", help="the series as JSON")

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.series import series
        from runner.reports.common import format_metric

        with open_for(args) as store:
            points = store.points(case=args.case, metric=args.metric, branch=args.branch)
            if not points:
                points = store.points(scenario=args.case, metric=args.metric,
                                      branch=args.branch)
            environments = store.environments()
        if not points:
            raise UsageError(f"no recorded {args.metric} for {args.case!r} in {store_url(args)}")
        found = series(points, environments)
        if args.json:
            print(json.dumps([{"scenario": s.scenario, "case": s.case, "metric": s.metric,
                               "environment": s.environment, "broke": s.broke,
                               "points": [{"check": p.check_id, "commit": p.commit.sha
                                           if p.commit else None, "values": p.values,
                                           "median": p.median} for p in s.points]}
                              for s in found], indent=1))
            return EXIT_OK
        for segment in found:
            print(f"{segment.case} {segment.metric} (environment {segment.environment})")
            if segment.broke:
                print(f"  the environment changed: {'; '.join(segment.broke)}")
            for point in segment.points:
                commit = point.commit.short if point.commit else "-" * 10
                values = ", ".join(format_metric(point.metric, v) for v in point.values)
                print(f"  {commit:11}  {point.recorded[:10]}  median "
                      f"{format_metric(point.metric, point.median):>10}  [{values}]")
        return EXIT_OK


class ExportAction:
    """One recorded check (default: the newest) as Bencher's metric JSON or
    github-action-benchmark's customSmallerIsBetter list, for teams that already use those."""

    name = "export"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS),
                            dest="export_format", help="the tracker's format")
        parser.add_argument("--check", metavar="ID", help="the check (an id or its start)")
        parser.add_argument("-o", "--output", type=Path, metavar="PATH",
                            help="write here (default: standard output)")

    def run(self, args: argparse.Namespace) -> int:
        from runner.reports.interface import ReportFormat, render_text

        with open_for(args) as store:
            check_id = args.check
            if check_id is None:
                newest = store.checks(1)
                if not newest:
                    raise UsageError(f"no checks recorded in {store_url(args)}")
                check_id = newest[0].id
            record = store.check(check_id)
        text = render_text(ReportFormat(EXPORT_FORMATS[args.export_format]),
                           record.to_results())
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return EXIT_OK


class _BranchAction:
    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        from runner.history import BRANCH, REMOTE

        parser.add_argument("--repo", type=Path, default=Path.cwd(),
                            help="the git repository (default: here)")
        parser.add_argument("--branch", default=BRANCH,
                            help=f"the history branch (default {BRANCH})")
        parser.add_argument("--remote", default=REMOTE, help=f"the remote (default {REMOTE})")


class PullAction(_BranchAction):
    """Fetch the history branch and import the checks the store lacks (creates the store)."""

    name = "pull"

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.gitbranch import pull

        with open_for(args, create=True) as store:
            count = pull(args.repo, store, args.branch, args.remote)
        print(f"history: {format_count(count, 'check')} imported from "
              f"{args.remote}/{args.branch}")
        return EXIT_OK


class PushAction(_BranchAction):
    """Push the store's checks that the history branch lacks, one file each, without touching
    the work tree; retried when another writer pushed first."""

    name = "push"

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.gitbranch import push_store

        with open_for(args) as store:
            count = push_store(args.repo, store, args.branch, args.remote)
        print(f"history: {format_count(count, 'check')} pushed to "
              f"{args.remote}/{args.branch}")
        return EXIT_OK


def _measure_arguments(parser: argparse.ArgumentParser) -> None:
    """What backfill and bisect share: the repository, the SLA file, how each commit is
    checked, and the branch its checks are recorded on."""
    parser.add_argument("--sla", type=Path, default=Path("sla.yaml"), metavar="SLA_FILE",
                        help="the SLA file as it is now, inside the repository (default "
                             "sla.yaml): put at its own path in every commit's tree, so every "
                             "commit is judged by today's rules")
    parser.add_argument("--sla-at-commit", action="store_true",
                        help="use each commit's own SLA file (at the same path) instead")
    parser.add_argument("--repo", type=Path, default=Path("."),
                        help="the git repository (default: here)")
    parser.add_argument("--branch", metavar="NAME",
                        help="the branch the checks are recorded on (default: the branch "
                             "checked out in --repo)")
    parser.add_argument("--backend", choices=backends.choices(),
                        help="override the SLA file's backend")
    parser.add_argument("--repeats", type=int, help="override the number of timed runs")
    parser.add_argument("--only", action="append", default=[], metavar="SCENARIO",
                        help="check only this scenario (repeatable)")
    parser.add_argument("--size", action="append", type=int, default=[], metavar="N",
                        help="check only this value of the size parameter (repeatable)")


def _options(args: argparse.Namespace) -> CheckOptions:
    from runner.history.backfill import CheckOptions

    return CheckOptions(backend=args.backend, repeats=args.repeats, only=tuple(args.only),
                        sizes=tuple(args.size), sla_at_commit=args.sla_at_commit)


def _branch(args: argparse.Namespace) -> str | None:
    from runner.history.backfill import git

    if args.branch:
        return str(args.branch)
    name = git(args.repo, "rev-parse", "--abbrev-ref", "HEAD", check=False)
    return name if name and name != "HEAD" else None


class BackfillAction:
    """Measure past commits and record each into the history, so a history starts on day one.

    RANGE is A..B (the commits after A up to B, oldest first, first parents only unless
    --all-parents) or single revisions. Each commit is checked in a clean worktree of its own
    (removed after, also when interrupted), with the SLA file AS IT IS NOW put at its own path
    in the commit's tree: project: . and relative paths are the commit's, the rules are
    today's (--sla-at-commit: the commit's own file). Each check is recorded with its
    commit's sha, parent and commit time. Commits the store already holds a check of in the
    same environment are skipped unless --again. A commit whose check fails or cannot run (a
    build that fails, a bad SLA file at that commit) is recorded with that status and the
    backfill goes on. Exit 0 when every commit was recorded (whatever its status), 2 for a bad
    range or SLA file, 3 when the host could not measure or the store cannot be written, 130
    when interrupted (the commit being checked is not recorded).
    """

    name = "backfill"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("range", nargs="+", metavar="RANGE",
                            help="A..B, or one or more revisions")
        _measure_arguments(parser)
        parser.add_argument("--again", action="store_true",
                            help="measure commits the store already holds too")
        parser.add_argument("--all-parents", action="store_true",
                            help="A..B: every commit of the range, not only first parents")

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.backfill import backfill
        from runner.reports.history import backfill_line, backfill_summary

        spec: str | list[str] = args.range[0] if len(args.range) == 1 and ".." in args.range[0] \
            else list(args.range)
        with open_for(args, create=True) as store:
            done = backfill(args.repo, spec, args.sla, store, options=_options(args),
                            branch=_branch(args), first_parent=not args.all_parents,
                            again=args.again,
                            on_commit=lambda c, i, n: print(backfill_line(c, i, n), flush=True))
        print(backfill_summary(done))
        return EXIT_OK


class BisectAction:
    """Find the first commit of GOOD..BAD that breaks a rule or moves a metric, in O(log n)
    checks.

    --rule 'peak < 300MiB' calls a commit bad where a case breaks the rule (judged as the SLA
    file's rules are: the rule's statistic across repeats); --metric M --by X where a case's
    median of M moved by more than X against GOOD's (10%, or an amount such as 20MiB; +10%:
    only up, -10%: only down). A binary search over git rev-list --first-parent GOOD..BAD:
    GOOD is checked first, BAD only if the search ends on it. A check the store already holds
    for a commit (same environment) is used instead of measuring again; what is measured is
    recorded, as runner history backfill records it (clean worktrees, today's SLA file). A
    commit that cannot be judged (its build failed) is skipped, as git bisect skip does. Exit
    0 when the first bad commit was found (as git bisect run ends), 1 when there is none to
    find (BAD is not bad, GOOD is bad already) or skipped commits leave it one of several, 2
    for bad input (revisions, an unknown rule or metric), 3 when GOOD cannot be measured or
    the store cannot be written.
    """

    name = "bisect"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("good", metavar="GOOD", help="a commit known to be good")
        parser.add_argument("bad", metavar="BAD", help="a later commit known to be bad")
        parser.add_argument("--rule", metavar="RULE", help="bad: breaks this rule, e.g. "
                                                           "'peak < 300MiB'")
        parser.add_argument("--metric", metavar="M", help="bad: moves this metric ...")
        parser.add_argument("--by", metavar="X", help="... by more than X against GOOD "
                                                      "(10%%, +10%%, 20MiB)")
        parser.add_argument("--case", metavar="CASE",
                            help="judge only this case (a label, or a scenario's cases)")
        _measure_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.bisect import Criterion, bisect
        from runner.reports.history import bisect_summary, step_line

        criterion = Criterion.of(args.rule, args.metric, args.by, args.case)
        with open_for(args, create=True) as store:
            result = bisect(args.repo, args.good, args.bad, args.sla, store, criterion,
                            options=_options(args), branch=_branch(args),
                            on_step=lambda s: print(step_line(s, criterion.key), flush=True))
        print(bisect_summary(result))
        return EXIT_OK if result.found else EXIT_SLA_FAILED


class HtmlAction:
    """One self-contained HTML page: a chart per case and metric over commits, environment
    breaks and change points marked, the change points listed with links to their commits."""

    name = "html"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("output", type=Path, metavar="OUT.html", help="the page to write")
        parser.add_argument("--scenario", action="append", metavar="NAME",
                            help="only this scenario or case (repeatable)")
        parser.add_argument("--metric", action="append", metavar="METRIC",
                            help="only this metric (repeatable; default: every one)")
        parser.add_argument("--branch", help="only checks of this branch (the main line)")
        parser.add_argument("--commit-url", metavar="TEMPLATE", default=default_commit_url(),
                            help="link commits here, {sha} replaced (default: "
                                 "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/commit/{sha} when set)")

    def run(self, args: argparse.Namespace) -> int:
        from runner.history.detection import history_findings
        from runner.history.store import redacted
        from runner.reports.history_html import HistoryPage
        from runner.reports.interface import ReportFormat, check_available, report_target

        check_available(ReportFormat.HTML)
        with open_for(args) as store:
            findings = history_findings(store, scenarios=args.scenario or (),
                                        metrics=args.metric or (), branch=args.branch)
        if not findings:
            raise UsageError(f"no recorded series match in {store_url(args)}")
        with report_target(args.output) as out:
            HistoryPage().render(findings, out, commit_url=args.commit_url or None,
                                 source=redacted(store_url(args)))
        alerts = sum(1 for f in findings for c in f.changes if not c.accepted)
        print(f"history: {args.output} ({format_count(len(findings), 'series segment')}, "
              f"{format_count(alerts, 'change point')} not accepted)")
        return EXIT_OK


def default_commit_url() -> str | None:
    server, repository = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    return f"{server.rstrip('/')}/{repository}/commit/{{sha}}" if server and repository else None


HISTORY_ACTIONS: list[type[Action]] = [ListAction, ShowAction, ExportAction, PullAction,
                                       PushAction, DetectAction, AcceptAction,
                                       BackfillAction, BisectAction, HtmlAction]




class HistoryCommand:
    """The history of recorded checks: list, show, export, pull, push, backfill, bisect.

    The store is --history URL (a file, sqlite:///PATH or postgresql://...), else
    $MEMSLA_HISTORY, else .memsla/history.db. Record checks into it with runner check
    --history. Exit 3 when the store cannot be opened or read.
    """

    name = "history"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        from runner.cli import first_sentence

        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action_class in HISTORY_ACTIONS:
            action = action_class()
            doc = (action_class.__doc__ or "").strip()
            sub = actions.add_parser(action.name, help=first_sentence(doc), description=doc)
            sub.add_argument("--history", metavar="URL",
                             help="the store (default: $MEMSLA_HISTORY, else "
                                  f"{DEFAULT_STORE})")
            action.prepare_parser(sub)
            sub.set_defaults(action_handler=action)

    def run(self, args: argparse.Namespace) -> int:
        return int(args.action_handler.run(args))
