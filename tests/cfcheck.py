"""The standard checkers users' tools apply, run offline on every NetCDF file the portal writes.

* The NetCDF Climate and Forecast checker (``cfchecker``, the CF community's own), against the
  CF version the file declares, with the CF standard name table that ``compliance-checker`` ships
  and the vendored area type / region tables of ``tests/cf_tables`` (no network). udunits comes
  from Debian's ``libudunits2-0``.
* The IOOS ``compliance-checker``: the ``cf:1.8`` suite (100 % expected) and ``acdd:1.3``.

Use :func:`check` in tests::

    report = check(path)
    assert report.cf_errors == [], report.explain()
    assert report.score("cf:1.8") == 1.0, report.explain()
    assert report.score("acdd:1.3") >= 0.9, report.explain()
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

TABLES = Path(__file__).parent / "cf_tables"
SUITES = ("cf:1.8", "acdd:1.3")


def _standard_name_table() -> str:
    import compliance_checker

    return str(Path(compliance_checker.__file__).parent / "data" / "cf-standard-name-table.xml")


@dataclass
class Report:
    """What the checkers said about one file."""

    path: Path
    cf_errors: list[str] = field(default_factory=list)  # cfchecker FATAL and ERROR messages
    cf_warnings: list[str] = field(default_factory=list)
    points: dict[str, tuple[int, int]] = field(default_factory=dict)  # suite -> (scored, possible)
    failures: dict[str, list[str]] = field(default_factory=dict)  # suite -> messages of checks not fully passed

    def score(self, suite: str) -> float:
        scored, possible = self.points[suite]
        return scored / possible if possible else 1.0

    def explain(self) -> str:
        lines = [f"{self.path.name}: cfchecker {len(self.cf_errors)} errors"]
        lines += [f"  cfchecker: {m}" for m in self.cf_errors]
        for suite, (scored, possible) in self.points.items():
            lines.append(f"  {suite}: {scored}/{possible}")
            lines += [f"    {m}" for m in self.failures.get(suite, [])]
        return "\n".join(lines)


def cf_messages(path: Path) -> tuple[list[str], list[str]]:
    """cfchecker's (errors, warnings) for ``path``: FATAL and ERROR, then WARN, each ``where: message``."""
    from cfchecker.cfchecks import CFChecker

    checker = CFChecker(
        cfStandardNamesXML=_standard_name_table(),
        cfAreaTypesXML=str(TABLES / "area-type-table.xml"),
        cfRegionNamesXML=str(TABLES / "standardized-region-list.xml"),
        silent=True,
        version=None,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        results = checker.checker(str(path))
    errors, warnings = [], []
    scopes = [("global", results["global"])] + list(results["variables"].items())
    for where, messages in scopes:
        errors += [f"{where}: {m}" for level in ("FATAL", "ERROR") for m in messages.get(level, [])]
        warnings += [f"{where}: {m}" for m in messages.get("WARN", [])]
    return errors, warnings


def check(path: str | Path, suites: tuple[str, ...] = SUITES) -> Report:
    """Run cfchecker and the compliance-checker suites on ``path``.

    Raises
    ------
    RuntimeError
        A compliance-checker check crashed on the file (reported, not silently scored).
    """
    from compliance_checker.runner import CheckSuite

    path = Path(path)
    report = Report(path)
    report.cf_errors, report.cf_warnings = cf_messages(path)
    suite = CheckSuite()
    suite.load_all_available_checkers()
    ds = suite.load_dataset(str(path))
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # compliance-checker 6.1 warns about its own check API on every run (not about the file)
            warnings.filterwarnings(
                "ignore", "Passing the dataset to every single check is deprecated", DeprecationWarning
            )
            results = suite.run_all(ds, list(suites), skip_checks=[])
        for name, (groups, errors) in results.items():
            if errors:
                raise RuntimeError(f"{name} crashed on {path.name}: {errors}")
            # the score the checker's own reports give: points scored / possible, every priority
            summary = suite.build_structure(name, groups, str(path), limit=1)
            report.points[name] = (summary["scored_points"], summary["possible_points"])
            report.failures[name] = [
                f"{r.name}: " + "; ".join(str(m) for m in r.msgs)
                for r in summary["all_priorities"]
                if r.value[0] < r.value[1]
            ]
    finally:
        ds.close()
    return report
