"""The SLA file: its schema, its rules and its loader. ``load_suite`` is the entry point."""

from runner.spec.loader import load_suite, parse_suite
from runner.spec.model import Scenario, Suite
from runner.spec.rules import Rule, parse_rule

__all__ = ["Rule", "Scenario", "Suite", "load_suite", "parse_rule", "parse_suite"]
