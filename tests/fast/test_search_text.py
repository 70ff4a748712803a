"""Query reading and marking of portal.catalog.search that need no database."""

from __future__ import annotations

import pytest

from portal.catalog import search


def test_parse_reads_filters_box_period_and_sort():
    p = search.parse(
        {
            "q": [" soil  "],
            "keyword": ["冻融", "冻融", "蒸散发"],
            "bbox": ["170,-10,-170,10"],
            "time": ["2015/.."],
            "sort": ["title"],
        }
    )
    assert p.q == "soil" and p.filters == {"keyword": ("冻融", "蒸散发")} and p.bbox == (170, -10, -170, 10)
    assert p.period[0].year == 2015 and p.period[1] is None and p.sort == "title"
    whole_year = search.parse({"time": ["2015"]}).period
    assert (whole_year[0].isoformat(), whole_year[1].date().isoformat()) == ("2015-01-01T00:00:00+00:00", "2015-12-31")


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"categroy": ["x"]}, "categroy", "did you mean 'category'"),
        ({"bbox": ["a,b,c,d"]}, "bbox", "min_lon"),
        ({"bbox": ["0,0,200,10"]}, "bbox", "[-180, 180]"),
        ({"time": ["yesterday"]}, "time", "ISO 8601"),
        ({"sort": ["up"]}, "sort", "relevance"),
        ({"q": ["a\x00"]}, "q", "NUL"),
        ({"time": ["2020", "2021"]}, "time", "one value"),
    ],
)
def test_parse_errors_name_the_parameter(params, field, words):
    with pytest.raises(search.SearchError) as caught:
        search.parse(params)
    assert caught.value.field == field and words in str(caught.value)


def test_query_string_round_trips_through_parse():
    p = search.parse({"q": ["土壤"], "format": ["NetCDF"], "bbox": ["1,2,3,4"], "time": ["2001-01-01/2002-01-01"]})
    from urllib.parse import parse_qs

    again = search.parse(parse_qs(p.query_string()))
    assert again == p
    assert "bbox" not in p.query_string(bbox="")


def test_highlight_marks_stems_and_han_words_and_escapes_html():
    assert str(search.highlight("Soil moisture of soils", ["moisture", "soil"])) == (
        "<mark>Soil</mark> <mark>moisture</mark> of <mark>soils</mark>"
    )
    assert "<mark>土壤水分</mark>" in str(search.highlight("全球土壤水分数据", ["土壤水分"]))
    assert "&lt;b&gt;" in str(search.highlight("<b>x</b>", ["x"]))
    text = "word " * 100 + "target " + "word " * 100
    snip = str(search.snippet(text, ["target"], width=60))
    assert snip.startswith("… ") and "<mark>target</mark>" in snip and snip.endswith(" …")
