"""A SYNTHETIC catalogue of land-surface hydrology records for the search benchmark (not real data).

Every record is labelled: its id starts with ``synthetic-``, its ``source_portal`` is
``SYNTHETIC benchmark catalogue`` and its English title ends with ``[SYNTHETIC]``. Text is
generated from the portal's own vocabulary (:mod:`portal.catalog.vocabulary`) and the theme,
region, method and source tables below, in parallel English and Chinese: a title, a three-
sentence abstract, keywords, a variable (CF standard name), a box (regions of the field's usual
study areas, sub-boxes of them for regional studies), a period (1950-2024), resolutions, formats
and share types in realistic proportions. Deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.contrib.gis.geos import Polygon

from portal.catalog import search
from portal.catalog.models import Dataset, Tag

SOURCE = "SYNTHETIC benchmark catalogue"
THEMES = [  # (English, Chinese, keyword (Chinese tag), CF standard name, category)
    ("soil moisture", "土壤水分", "土壤水分", "volume_fraction_of_condensed_water_in_soil", "水文"),
    ("evapotranspiration", "蒸散发", "蒸散发", "water_evapotranspiration_flux", "水文"),
    ("terrestrial water storage anomaly", "陆地储水异常", "陆地储水", "land_water_amount", "水文"),
    ("surface freeze/thaw state", "地表冻融状态", "冻融", "surface_freeze_thaw_state", "冰冻圈"),
    ("precipitation", "降水", "降水", "precipitation_flux", "大气"),
    ("runoff", "径流", "径流", "runoff_flux", "水文"),
    ("land surface temperature", "地表温度", "地表温度", "surface_temperature", "遥感"),
    ("leaf area index", "叶面积指数", "叶面积指数", "leaf_area_index", "生态"),
    ("snow water equivalent", "雪水当量", "积雪", "surface_snow_amount", "冰冻圈"),
    ("permafrost soil ice content", "多年冻土含冰量", "多年冻土", "soil_frozen_water_content", "冰冻圈"),
]
REGIONS = [  # (English, Chinese, tag, (west, south, east, north), share of records)
    ("global", "全球", "全球", (-180, -90, 180, 90), 0.25),
    ("Tibetan Plateau", "青藏高原", "青藏高原", (73, 25, 105, 40), 0.15),
    ("China", "中国", "中国", (73, 18, 135, 54), 0.12),
    ("Heihe River basin", "黑河流域", "黑河流域", (97, 37, 102, 43), 0.05),
    ("Yellow River basin", "黄河流域", "黄河流域", (95, 32, 120, 42), 0.05),
    ("Yangtze River basin", "长江流域", "长江流域", (90, 24, 122, 35), 0.05),
    ("Qilian Mountains", "祁连山", "祁连山", (94, 36, 104, 40), 0.03),
    ("Africa", "非洲", "非洲", (-18, -35, 52, 38), 0.06),
    ("Europe", "欧洲", "欧洲", (-25, 35, 45, 72), 0.07),
    ("North America", "北美洲", "北美洲", (-170, 15, -50, 75), 0.07),
    ("South America", "南美洲", "南美洲", (-82, -56, -34, 13), 0.04),
    ("Australia", "澳大利亚", "澳大利亚", (112, -44, 154, -10), 0.03),
    ("Arctic", "北极", "北极", (-180, 66, 180, 90), 0.03),
]
METHODS = [
    ("machine learning", "机器学习", "机器学习"),
    ("random forest", "随机森林", "随机森林"),
    ("LightGBM", "LightGBM", "机器学习"),
    ("data assimilation", "数据同化", "数据同化"),
    ("triple collocation", "三重配置", "三重配置"),
    ("downscaling", "降尺度", "降尺度"),
    ("deep learning", "深度学习", "深度学习"),
    ("extremely randomized trees", "极端随机树", "极端随机树"),
]
SOURCES = ["SMAP", "SMOS", "AMSR2", "ERA5-Land", "GLDAS", "GRACE/GRACE-FO", "MODIS", "FLUXNET", "ISMN", "CMFD"]
SPACE = ["0.05°", "0.1°", "0.25°", "0.5°", "1 km", "5 km", "25 km", "30 m", "9 km"]
TIME = [("daily", "日"), ("monthly", "月"), ("8-day", "8天"), ("yearly", "年"), ("hourly", "小时")]
FORMATS = ["nc", "nc、tif", "tif", "h5", "csv", "nc、xlsx", "zarr"]
SHARE = ["open-access"] * 14 + ["login-access"] * 5 + ["protected"]


def records(n: int, seed: int = 14):
    """Yield ``n`` unsaved SYNTHETIC records with their tags (name, English), variables and a published flag."""
    rng = np.random.default_rng(seed)
    weights = np.array([r[4] for r in REGIONS])
    region_ix = rng.choice(len(REGIONS), size=n, p=weights / weights.sum())
    for i in range(n):
        theme = THEMES[rng.integers(len(THEMES))]
        name_en, name_cn, region_tag, (w, s, e, nth), _ = REGIONS[region_ix[i]]
        method = METHODS[rng.integers(len(METHODS))]
        source, source2 = (SOURCES[j] for j in rng.choice(len(SOURCES), 2, replace=False))
        space, (time_en, time_cn) = SPACE[rng.integers(len(SPACE))], TIME[rng.integers(len(TIME))]
        start = int(rng.integers(1950, 2021))
        end = min(2024, start + int(rng.integers(1, 40)))
        if name_en != "global" and rng.random() < 0.5:  # a regional study: a sub-box of the region
            width, height = (e - w) * rng.uniform(0.1, 0.6), (nth - s) * rng.uniform(0.1, 0.6)
            w = w + (e - w - width) * rng.random()
            s = s + (nth - s - height) * rng.random()
            e, nth = w + width, s + height
        title_en = (
            f"{name_en[0].upper() + name_en[1:]} {theme[0]} dataset based on {method[0]} "
            f"({start}-{end}, {space}) [SYNTHETIC]"
        )
        title_cn = f"基于{method[1]}的{name_cn}{theme[1]}数据集（{start}-{end}年，{space}）[合成]"
        abstract_en = (
            f"<p>This dataset provides {time_en} {theme[0]} over {name_en} from {start} to {end} at "
            f"{space} resolution. It was produced with {method[0]} trained on {source} and {source2} "
            f"observations, and validated against in-situ stations. SYNTHETIC record generated for "
            f"the search benchmark.</p>"
        )
        abstract_cn = (
            f"<p>本数据集提供{name_cn}{start}年至{end}年逐{time_cn}{theme[1]}，空间分辨率为{space}。"
            f"数据采用{method[1]}方法，基于{source}和{source2}观测训练，并利用地面站点进行验证。"
            f"本记录为检索基准测试合成数据。</p>"
        )
        tags = [(theme[2], ""), (region_tag, ""), (method[2], "")]
        if rng.random() < 0.3:
            tags.append(("气候变化", ""))
        updated = dt.datetime(2015, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=int(rng.integers(0, 6_000_000)))
        dataset = Dataset(
            id=f"synthetic-{i:06d}",
            title_en=title_en,
            title_cn=title_cn,
            abstract_en=abstract_en,
            abstract_cn=abstract_cn,
            category=theme[4],
            space_res_cn=space,
            space_res_en=space,
            time_res_cn=time_en,
            time_res_en=time_en,
            format_cn=FORMATS[rng.integers(len(FORMATS))],
            share_type=SHARE[rng.integers(len(SHARE))],
            source_portal=SOURCE,
            updated=updated,
            acq_start=dt.datetime(start, 1, 1, tzinfo=dt.UTC),
            acq_end=dt.datetime(end, 12, 31, tzinfo=dt.UTC),
            bbox=Polygon.from_bbox((float(w), float(s), float(e), float(nth))),
            raw={"synthetic": True},
        )
        dataset.format_en = dataset.format_cn
        yield dataset, tags, (theme[3],), bool(rng.random() < 0.2)


def load(n: int, seed: int = 14, chunk: int = 5000) -> int:
    """Write ``n`` SYNTHETIC records, their keywords and their search documents; returns how many."""
    from portal.catalog import vocabulary as vocab

    tag_ids: dict[str, int] = {}
    written = 0
    batch = []
    for item in records(n, seed):
        batch.append(item)
        if len(batch) == chunk:
            written += _write(batch, tag_ids, vocab)
            batch = []
    if batch:
        written += _write(batch, tag_ids, vocab)
    return written


def _write(batch, tag_ids, vocab) -> int:
    Dataset.objects.bulk_create([d for d, *_ in batch], batch_size=1000)
    for _, tags, *_ in batch:
        for name, _en in tags:
            if name not in tag_ids:
                tag_ids[name] = Tag.objects.get_or_create(
                    kind=Tag.Kind.TOPIC, name=name, defaults={"name_en": vocab.keyword_en(name)}
                )[0].id
    through = Dataset.tags.through
    through.objects.bulk_create(
        [through(dataset_id=d.id, tag_id=tag_ids[name]) for d, tags, *_ in batch for name, _en in dict.fromkeys(tags)],
        batch_size=5000,
    )
    rows, lexicon = [], set()
    for dataset, tags, variables, published in batch:
        fields = search.document_fields(
            dataset, [(name, vocab.keyword_en(name)) for name, _ in tags], variables, published
        )
        rows.append(search.document_row(dataset, fields))
        lexicon |= fields.lexicon
    search.write_documents(rows, lexicon)
    return len(batch)
