"""The validation browser's query parameters and its freeze/thaw scores: pure functions, no Django.

:func:`parse` turns a request's query (``split``, ``network``, ``land_cover``, ``variable``, ``metric``,
``min``, ``max``, ``sort``) into :class:`Filters`, raising :class:`FilterError` naming the parameter and
what was expected; :func:`apply` filters and sorts per-station rows with them. :func:`matrix_scores`
gives overall accuracy, Cohen's kappa and per-class recall of a 2 x 2 confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: Metrics a map can be coloured by and a range can filter, in the order the page offers them.
METRICS = ("kge", "r", "ubrmse", "bias", "rmse", "nse")
#: Metrics whose larger value is better (the others are errors: smaller, or nearer zero for bias, is better).
HIGHER_IS_BETTER = {"kge", "r", "nse"}
#: Columns the table sorts by (``-name``: descending).
SORTS = ("label", "network", "land_cover", "split", "n", *METRICS)
PARAMETERS = ("split", "network", "land_cover", "variable", "metric", "min", "max", "sort")
#: Longest accepted value of a text parameter (characters).
MAX_TEXT = 100


class FilterError(ValueError):
    """A bad query parameter: ``field`` names it, the message says what was expected."""

    def __init__(self, field: str, detail: str):
        super().__init__(detail)
        self.field = field


@dataclass(frozen=True)
class Filters:
    """A validated query: empty strings and None mean no filter; ``metric`` colours and bounds ``min``/``max``."""

    split: str = ""
    network: str = ""
    land_cover: str = ""
    variable: str = ""
    metric: str = "kge"
    low: float | None = None
    high: float | None = None
    sort: str = "label"

    def as_query(self) -> dict[str, str]:
        """The non-default parameters as a query (for links and the API's echo)."""
        out = {"split": self.split, "network": self.network, "land_cover": self.land_cover, "variable": self.variable}
        out = {k: v for k, v in out.items() if v}
        if self.metric != "kge":
            out["metric"] = self.metric
        if self.low is not None:
            out["min"] = f"{self.low:g}"
        if self.high is not None:
            out["max"] = f"{self.high:g}"
        if self.sort != "label":
            out["sort"] = self.sort
        return out


def _number(name: str, text: str) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise FilterError(name, f"expected a number, found {text[:40]!r}") from None
    if not math.isfinite(value):
        raise FilterError(name, f"expected a finite number, found {text[:40]!r}")
    return value


def _choice(name: str, text: str, allowed: Sequence[str] | None) -> str:
    if len(text) > MAX_TEXT:
        raise FilterError(name, f"expected at most {MAX_TEXT} characters")
    if text and allowed is not None and text not in allowed:
        shown = ", ".join(sorted(allowed)[:20]) or "none in this version"
        raise FilterError(name, f"unknown value {text[:40]!r}; expected one of: {shown}")
    return text


def parse(
    query: Mapping[str, str | Sequence[str]],
    *,
    splits: Iterable[str] | None = None,
    networks: Iterable[str] | None = None,
    land_covers: Iterable[str] | None = None,
    variables: Iterable[str] | None = None,
    ignore: Iterable[str] = ("lang", "format"),
) -> Filters:
    """Validate a request's query.

    Parameters
    ----------
    query : mapping of str to str or list of str
        The query parameters (a list: each given once at most).
    splits, networks, land_covers, variables : iterables of str, optional
        The values the version holds; a value outside them is refused (None: any value).
    ignore : iterable of str
        Other parameters the page accepts and this function leaves alone.

    Returns
    -------
    Filters

    Raises
    ------
    FilterError
        An unknown parameter, a parameter given twice, an unknown split/network/class/variable/metric/sort,
        a bound that is no finite number, or ``min`` above ``max``.
    """
    values: dict[str, str] = {}
    for name, raw in query.items():
        if name in ignore:
            continue
        if name not in PARAMETERS:
            raise FilterError(name, f"unknown parameter; expected some of: {', '.join(PARAMETERS)}")
        items = [raw] if isinstance(raw, str) else list(raw)
        if len(items) > 1:
            raise FilterError(name, "expected once")
        values[name] = (items[0] if items else "").strip()
    metric = values.get("metric", "") or "kge"
    if metric not in METRICS:
        raise FilterError("metric", f"unknown metric {metric[:40]!r}; expected one of: {', '.join(METRICS)}")
    sort = values.get("sort", "") or "label"
    if sort.removeprefix("-") not in SORTS:
        raise FilterError("sort", f"expected one of: {', '.join(SORTS)} (prefix '-' for descending)")
    low, high = _number("min", values.get("min", "")), _number("max", values.get("max", ""))
    if low is not None and high is not None and low > high:
        raise FilterError("min", f"expected min <= max, found min={low:g} > max={high:g}")
    return Filters(
        split=_choice("split", values.get("split", ""), None if splits is None else list(splits)),
        network=_choice("network", values.get("network", ""), None if networks is None else list(networks)),
        land_cover=_choice(
            "land_cover", values.get("land_cover", ""), None if land_covers is None else list(land_covers)
        ),
        variable=_choice("variable", values.get("variable", ""), None if variables is None else list(variables)),
        metric=metric,
        low=low,
        high=high,
        sort=sort,
    )


def apply(rows: Iterable[Mapping], filters: Filters) -> list[Mapping]:
    """The rows ``filters`` keep, in its sort order.

    Parameters
    ----------
    rows : iterable of mappings
        Per-station rows with ``split``, ``network``, ``land_cover``, ``variable``, ``label``, ``n`` and the
        :data:`METRICS` (float or None; None: no number, e.g. a KGE that is not meaningful).
    filters : Filters

    Returns
    -------
    list
        The kept rows. A metric range drops rows without a number for that metric. Rows without a value
        of the sort column come last in either direction.
    """
    kept = [
        r
        for r in rows
        if (not filters.split or r["split"] == filters.split)
        and (not filters.network or r["network"] == filters.network)
        and (not filters.land_cover or r["land_cover"] == filters.land_cover)
        and (not filters.variable or r["variable"] == filters.variable)
        and (filters.low is None or (r[filters.metric] is not None and r[filters.metric] >= filters.low))
        and (filters.high is None or (r[filters.metric] is not None and r[filters.metric] <= filters.high))
    ]
    key, descending = filters.sort.removeprefix("-"), filters.sort.startswith("-")
    present = [r for r in kept if r[key] is not None and r[key] != ""]
    missing = [r for r in kept if r[key] is None or r[key] == ""]
    present.sort(key=lambda r: (r[key], r["label"]), reverse=descending)
    return present + missing


def matrix_scores(matrix: Sequence[Sequence[int]]) -> dict:
    """Overall accuracy, Cohen's kappa and per-class recall of a binary confusion matrix.

    Parameters
    ----------
    matrix : 2 x 2 nested sequence of int
        ``[[TN, FP], [FN, TP]]``: rows the reference (thawed, frozen), columns the prediction (thawed,
        frozen), counts of pixels (as ``products.generators.freeze_thaw.classification_metrics`` stores it).

    Returns
    -------
    dict
        ``n`` (int), ``overall_accuracy`` (fraction), ``kappa`` (Cohen 1960; None where chance agreement
        is 1, i.e. one class only), ``recall_thawed``, ``recall_frozen`` (None where the class is absent
        from the reference).

    Raises
    ------
    ValueError
        Not a 2 x 2 matrix of non-negative integers, or all zero.

    References
    ----------
    Cohen (1960), doi:10.1177/001316446002000104.
    """
    try:
        (tn, fp), (fn, tp) = matrix
        cells = [int(tn), int(fp), int(fn), int(tp)]
    except (TypeError, ValueError):
        raise ValueError(f"expected a 2 x 2 matrix of counts, found {matrix!r}") from None
    if any(c < 0 for c in cells) or cells != [tn, fp, fn, tp]:
        raise ValueError(f"expected non-negative integer counts, found {matrix!r}")
    tn, fp, fn, tp = cells
    n = tn + fp + fn + tp
    if n == 0:
        raise ValueError("expected at least one pixel, found an all-zero matrix")
    observed = (tn + tp) / n
    chance = ((tn + fp) * (tn + fn) + (fn + tp) * (fp + tp)) / n**2
    return {
        "n": n,
        "overall_accuracy": observed,
        "kappa": (observed - chance) / (1 - chance) if chance < 1 else None,
        "recall_thawed": tn / (tn + fp) if tn + fp else None,
        "recall_frozen": tp / (tp + fn) if tp + fn else None,
    }
