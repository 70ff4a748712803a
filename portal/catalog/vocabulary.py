"""The catalogue's one bilingual vocabulary: keywords, categories, abbreviations, facet labels.

Pure data and pure functions (no Django): the importer names each tag in English from
:data:`KEYWORDS`, the search index (:mod:`portal.catalog.search`) expands abbreviations with
:data:`SYNONYMS` and normalizes the record's free-text resolution and format fields into facet
values, and the synthetic benchmark catalogue (``tests/bench/synthetic_catalog.py``) draws its
text from the same words.

Keys of :data:`KEYWORDS` and :data:`CATEGORIES` are the Chinese names TPDC records use (the
records keep tags and categories in Chinese only); a tag missing here is shown by its own name
in both languages.
"""

from __future__ import annotations

import re
import unicodedata

KEYWORDS: dict[str, str] = {
    # tags of the five seed records (../shared/catalog)
    "蒸散发": "evapotranspiration",
    "机器学习": "machine learning",
    "全球": "global",
    "土壤水分": "soil moisture",
    "数据同化": "data assimilation",
    "冻融": "freeze/thaw",
    "微波遥感": "microwave remote sensing",
    "极端随机树": "extremely randomized trees",
    "青藏高原": "Tibetan Plateau",
    "陆地储水": "terrestrial water storage",
    "气候变化": "climate change",
    "降尺度": "downscaling",
    "地理学": "geography",
    # further terms of the field (the synthetic catalogue draws from them too)
    "水文": "hydrology",
    "冰冻圈": "cryosphere",
    "遥感": "remote sensing",
    "通量塔": "flux tower",
    "降水": "precipitation",
    "径流": "runoff",
    "地下水": "groundwater",
    "积雪": "snow cover",
    "冻土": "frozen ground",
    "多年冻土": "permafrost",
    "地表温度": "land surface temperature",
    "植被": "vegetation",
    "叶面积指数": "leaf area index",
    "重力卫星": "gravity satellite",
    "再分析": "reanalysis",
    "陆面模式": "land surface model",
    "三重配置": "triple collocation",
    "深度学习": "deep learning",
    "随机森林": "random forest",
    "流域": "river basin",
    "干旱": "drought",
    "水量平衡": "water balance",
    "亚洲": "Asia",
    "中国": "China",
    "非洲": "Africa",
    "欧洲": "Europe",
    "北美洲": "North America",
    "南美洲": "South America",
    "澳大利亚": "Australia",
    "黄河流域": "Yellow River basin",
    "长江流域": "Yangtze River basin",
    "黑河流域": "Heihe River basin",
    "祁连山": "Qilian Mountains",
    "喜马拉雅": "Himalaya",
    "北极": "Arctic",
}
"""Keyword (TPDC tag) names, Chinese -> English."""

CATEGORIES: dict[str, str] = {
    "水文": "Hydrology",
    "冰冻圈": "Cryosphere",
    "大气": "Atmosphere",
    "生态": "Ecology",
    "地表覆盖": "Land cover",
    "遥感": "Remote sensing",
    "土壤": "Soil",
    "气象": "Meteorology",
}
"""TPDC categories, Chinese -> English."""

SYNONYMS: dict[str, tuple[str, ...]] = {
    "et": ("evapotranspiration", "蒸散发", "蒸散"),
    "sm": ("soil moisture", "土壤水分", "土壤湿度"),
    "tws": ("terrestrial water storage", "land water storage", "陆地储水", "陆地蓄水量"),
    "twsa": ("terrestrial water storage", "land water storage", "陆地储水", "陆地蓄水量"),
    "grace": ("GRACE", "GRACE-FO", "gravity recovery and climate experiment", "重力卫星"),
    "ft": ("freeze thaw", "freeze/thaw", "冻融"),
    "era5": ("ERA5", "ERA5-Land", "reanalysis", "再分析"),
    "smap": ("SMAP", "soil moisture active passive"),
    "lightgbm": ("LightGBM", "light gradient boosting machine", "轻梯度提升机"),
}
"""Field abbreviations (lower case) -> the words records use for them, English and Chinese.

A query word that is an abbreviation matches records holding it in their title or keywords,
or holding any of its expansions anywhere (so ``ET`` no longer matches every "et al.")."""

VARIABLES_CN: dict[str, str] = {
    "water_evapotranspiration_flux": "蒸散发通量",
    "volume_fraction_of_condensed_water_in_soil": "土壤体积含水量",
    "land_water_amount": "陆地水储量",
    "soil_frozen_water_content": "土壤冻结水含量",
    "surface_freeze_thaw_state": "地表冻融状态",
    "precipitation_flux": "降水通量",
    "runoff_flux": "径流通量",
    "surface_temperature": "地表温度",
    "leaf_area_index": "叶面积指数",
    "surface_snow_amount": "地表积雪量",
}
"""Chinese labels of the variables (CF standard names; ``surface_freeze_thaw_state`` has none in
the CF table and is this portal's name for the freeze/thaw flag)."""

TIME_RESOLUTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "hourly": ("hourly", "逐时", ("hourly", "hour", "1h", "小时", "逐时")),
    "daily": ("daily", "逐日", ("daily", "day", "1d", "日", "逐日", "天")),
    "8-day": ("8-day", "8天", ("8-day", "8day", "8天")),
    "monthly": ("monthly", "逐月", ("monthly", "month", "月", "逐月")),
    "yearly": ("yearly", "逐年", ("yearly", "annual", "year", "年", "逐年")),
}
"""Normalized temporal resolutions: key -> (English label, Chinese label, spellings in records)."""

FORMATS: dict[str, str] = {
    "nc": "NetCDF",
    "netcdf": "NetCDF",
    "nc4": "NetCDF",
    "tif": "GeoTIFF",
    "tiff": "GeoTIFF",
    "geotiff": "GeoTIFF",
    "h5": "HDF5",
    "hdf5": "HDF5",
    "hdf": "HDF",
    "xlsx": "XLSX",
    "xls": "XLS",
    "csv": "CSV",
    "txt": "text",
    "zarr": "Zarr",
    "shp": "Shapefile",
    "grib": "GRIB",
    "grib2": "GRIB",
}
"""Format names in records (lower case) -> the facet's name."""

SHARE_TYPES: dict[str, tuple[str, str]] = {
    "open-access": ("open access", "开放获取"),
    "login-access": ("login access", "登录获取"),
    "protected": ("protected", "保护期"),
}

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RUN = re.compile(f"[{_CJK}]+")
TOKEN = re.compile(rf"[{_CJK}]+|[^\W_]+(?:[-.'][^\W_]+)*", re.UNICODE)
"""A query or document token: a run of Han characters, or a word of letters and digits (with
inner hyphens, dots or apostrophes: ``ERA5-Land``, ``0.25``)."""


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII, compatibility forms folded), without NUL."""
    return unicodedata.normalize("NFKC", text or "").replace("\x00", "")


def is_cjk(token: str) -> bool:
    """Whether ``token`` is a run of Han characters only (:data:`CJK_RUN`)."""
    return bool(CJK_RUN.fullmatch(token))


def keyword_en(name: str) -> str:
    """The English name of a TPDC tag (the tag itself when the vocabulary lacks it)."""
    return KEYWORDS.get(name, name)


def category_en(name: str) -> str:
    """The English name of a TPDC category (the category itself when the vocabulary lacks it)."""
    return CATEGORIES.get(name, name)


def time_resolutions(*texts: str) -> list[str]:
    """Normalized temporal resolutions named in a record's ``time_res`` texts (``"daily/monthly"``
    gives ``["daily", "monthly"]``), in :data:`TIME_RESOLUTIONS` order."""
    words = {w.lower() for t in texts for w in re.split(r"[\s/,;、，]+", normalize(t)) if w}
    return [key for key, (_, _, spellings) in TIME_RESOLUTIONS.items() if words & set(spellings)]


def spatial_resolutions(*texts: str) -> list[str]:
    """Normalized spatial resolutions (``"0.25°"``, ``"25 km"``, ``"1 km"``, ``"30 m"``) named in a
    record's ``space_res`` texts; other text is ignored."""
    found: dict[str, None] = {}
    for text in texts:
        for value, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(°|degrees?|deg|km|m)(?![a-z])", normalize(text).lower()):
            unit = "°" if unit.startswith(("°", "deg")) else unit
            number = value.rstrip("0").rstrip(".") if "." in value else value
            found[f"{number}{unit}" if unit == "°" else f"{number} {unit}"] = None
    return list(found)


def formats(*texts: str) -> list[str]:
    """Normalized file formats named in a record's ``format`` texts (``"nc、xlsx"`` gives
    ``["NetCDF", "XLSX"]``); unknown names are kept as written (upper case)."""
    found: dict[str, None] = {}
    for text in texts:
        for word in re.split(r"[\s/,;、，()]+", normalize(text).lower()):
            word = word.strip(".")
            if word:
                found[FORMATS.get(word, word.upper())] = None
    return list(found)


_CC = re.compile(r"^https?://creativecommons\.org/licenses/(by(?:-nc)?(?:-sa|-nd)?)/(\d\.\d)/?", re.I)
_CC0 = re.compile(r"^https?://creativecommons\.org/publicdomain/zero/1\.0/?", re.I)
_CC_NAMES = {
    "by": "Attribution",
    "by-sa": "Attribution-ShareAlike",
    "by-nd": "Attribution-NoDerivatives",
    "by-nc": "Attribution-NonCommercial",
    "by-nc-sa": "Attribution-NonCommercial-ShareAlike",
    "by-nc-nd": "Attribution-NonCommercial-NoDerivatives",
}


def spdx_licence(url: str) -> tuple[str, str] | None:
    """The SPDX identifier and full name of a Creative Commons licence URL, or ``None``.

    Parameters
    ----------
    url : str
        A licence URL, e.g. ``https://creativecommons.org/licenses/by/4.0/``.

    Returns
    -------
    tuple of (str, str) or None
        ``("CC-BY-4.0", "Creative Commons Attribution 4.0 International")``; ``("CC0-1.0", ...)``
        for the CC0 dedication; ``None`` for anything else.
    """
    url = (url or "").strip()
    if _CC0.match(url):
        return "CC0-1.0", "Creative Commons Zero v1.0 Universal"
    m = _CC.match(url)
    if not m:
        return None
    kind, number = m.group(1).lower(), m.group(2)
    suffix = " International" if number == "4.0" else (" Generic" if number in ("1.0", "2.0") else " Unported")
    return f"CC-{kind.upper()}-{number}", f"Creative Commons {_CC_NAMES[kind]} {number}{suffix}"
