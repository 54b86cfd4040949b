"""The SLA file: its schema, its rules and its loader. ``load_suite`` is the entry point."""

from runner.slafile.loader import load_suite, parse_suite
from runner.slafile.model import Scenario, Suite
from runner.slafile.rules import Rule, parse_rule

__all__ = ["Rule", "Scenario", "Suite", "load_suite", "parse_rule", "parse_suite"]
