"""The uncertainty a published version states beside its estimates, described in both languages.

Each product pipeline stores in its run summary a list ``summary["uncertainty"]`` (one entry per
uncertainty variable: :func:`products.methods.uncertainty.summary_entry`), which the publishing step
copies into the version's lineage. This module turns those entries into what the dataset page and
the API show: the variable and its estimate, how it is obtained (:data:`METHODS`, translated) and how
well it held at held-out observations (coverage of the stated interval, or the reliability of a class
probability), with a plain verdict. Pure description (no database access beyond the version given).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

METHOD_TEXT = {
    "quantile_regression": gettext_lazy(
        "LightGBM quantile regression (16th and 84th percentiles) fitted on the training folds only; "
        "standard error = half their distance"
    ),
    "member_spread": gettext_lazy("spread (sample standard deviation) of the fused members"),
    "mascon_spread": gettext_lazy(
        "spread between the reconstructions trained on each GRACE mascon solution (JPL, CSR): it shows how "
        "much the solutions disagree, not the model's error"
    ),
    "tc_nudging": gettext_lazy(
        "triple-collocation error standard deviations of the model and the retrieval, propagated through "
        "the nudging update"
    ),
    "class_probability": gettext_lazy("the classifier's class probability, fitted on the training blocks only"),
    "cv_residual_model": gettext_lazy("a model of the absolute cross-validation residual (held-out folds only)"),
}
"""Every key of :data:`products.methods.uncertainty.METHODS`, described for the page (translated;
a test checks that none is missing)."""

KIND_TEXT = {
    "standard_error": gettext_lazy("standard error"),
    "probability": gettext_lazy("class probability"),
}


def entries(version: Any) -> list[dict]:
    """The uncertainty entries of a version, described for a reader.

    Parameters
    ----------
    version : products.models.DatasetVersion
        Its ``lineage["summary"]["uncertainty"]`` is read; anything malformed is left out.

    Returns
    -------
    list of dict
        The stored entry (``file``, ``variable``, ``estimate``, ``kind``, ``method``, ``calibration``,
        ``not_calibrated_reason``) plus ``method_text``, ``kind_text`` (in the active language) and
        ``verdict``: ``"calibrated"``, ``"too narrow"``, ``"too wide"``, ``"not calibrated"`` (a
        probability) or ``"not measured"``, with ``verdict_text`` translated.
    """
    summary = (getattr(version, "lineage", None) or {}).get("summary") or {}
    found = summary.get("uncertainty") or []
    out = []
    for entry in found if isinstance(found, list) else []:
        if not isinstance(entry, dict) or entry.get("method") not in METHOD_TEXT or entry.get("kind") not in KIND_TEXT:
            continue
        cal = entry.get("calibration") if isinstance(entry.get("calibration"), dict) else None
        verdict = _verdict(cal)
        out.append(
            {
                **entry,
                "calibration": cal,
                "method_text": str(METHOD_TEXT[entry["method"]]),
                "kind_text": str(KIND_TEXT[entry["kind"]]),
                "verdict": verdict,
                "verdict_text": _verdict_text(verdict),
            }
        )
    return out


def _verdict(cal: dict | None) -> str:
    if not cal or cal.get("n") in (None, 0):
        return "not measured"
    if cal.get("calibrated"):
        return "calibrated"
    if cal.get("kind") == "coverage":
        return "too narrow" if cal.get("too_narrow") else "too wide"
    return "not calibrated"


def _verdict_text(verdict: str) -> str:
    return {
        "calibrated": _("calibrated"),
        "too narrow": _("not calibrated: the interval is too narrow (it covers less than it states)"),
        "too wide": _("not calibrated: the interval is too wide (it covers more than it states)"),
        "not calibrated": _("not calibrated"),
        "not measured": _("calibration not measured"),
    }[verdict]
