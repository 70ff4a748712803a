"""The search's pure text functions (no database): vocabulary normalization, tokens, marking."""

from __future__ import annotations

import pytest

from portal.catalog import vocabulary as vocab


def test_formats_resolutions_and_time_steps_are_normalized_from_record_text():
    assert vocab.formats("nc、xlsx") == ["NetCDF", "XLSX"]
    assert vocab.formats("geotiff、h5", "GeoTIFF") == ["GeoTIFF", "HDF5"]
    assert vocab.spatial_resolutions("0.25°") == ["0.25°"]
    assert vocab.spatial_resolutions("25 km", "25km") == ["25 km"]
    assert vocab.spatial_resolutions("0.10 degree") == ["0.1°"]
    assert vocab.spatial_resolutions("about 1 km, daily") == ["1 km"]
    assert vocab.time_resolutions("daily/monthly") == ["daily", "monthly"]
    assert vocab.time_resolutions("逐日") == ["daily"] and vocab.time_resolutions("") == []


def test_tokens_split_han_runs_from_latin_words_and_fold_full_width():
    assert vocab.TOKEN.findall(vocab.normalize("ERA5-Land 土壤水分,ＧＲＡＣＥ 0.25")) == [
        "ERA5-Land",
        "土壤水分",
        "GRACE",
        "0.25",
    ]
    assert vocab.is_cjk("冻融") and not vocab.is_cjk("FT")
    assert vocab.normalize("a\x00b") == "ab"


def test_every_abbreviation_expands_and_every_keyword_has_an_english_name():
    for key, expansions in vocab.SYNONYMS.items():
        assert key == key.lower() and expansions
    assert all(en and en != cn for cn, en in vocab.KEYWORDS.items())
    assert vocab.keyword_en("未知") == "未知" and vocab.category_en("水文") == "Hydrology"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
        ("http://creativecommons.org/licenses/by-nc-nd/3.0", "CC-BY-NC-ND-3.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
        ("https://data.tpdc.ac.cn/en/licence", None),
        ("", None),
    ],
)
def test_spdx_identifiers_of_creative_commons_licences(url, expected):
    found = vocab.spdx_licence(url)
    assert (found[0] if found else None) == expected
