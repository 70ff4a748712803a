"""Locust users for tests/bench/test_load.py: a mix of pages and API calls on one published grid.

The dataset (``LOAD_DATASET``) and its grid's version (``LOAD_VERSION``) are set by the test. Any
answer but a 2xx counts as a failure (locust's default), so a 429, 413, 5xx or a timeout
(``LOAD_TIMEOUT_S``, default 60 s) fails the run.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

DATASET = os.environ.get("LOAD_DATASET", "")
VERSION = os.environ.get("LOAD_VERSION", "")
TIMEOUT = float(os.environ.get("LOAD_TIMEOUT_S", 60))


def _lon() -> float:
    return round(random.uniform(-179, 179), 2)


def _lat() -> float:
    return round(random.uniform(-89, 89), 2)


class PortalUser(HttpUser):
    """A researcher browsing (pages) and a script downloading (API, EDR), in about equal parts."""

    wait_time = between(0.5, 2.0)

    def get(self, url: str, name: str):
        return self.client.get(url, name=name, timeout=TIMEOUT)

    # --- pages ---
    @task(3)
    def home(self):
        self.get("/", "page: home")

    @task(2)
    def dataset_list(self):
        self.get("/datasets/?q=soil", "page: dataset list")

    @task(2)
    def dataset_detail(self):
        self.get(f"/datasets/{DATASET}/", "page: dataset detail")

    # --- API ---
    @task(2)
    def api_list(self):
        self.get("/api/datasets/", "api: dataset list")

    @task(2)
    def api_detail(self):
        self.get(f"/api/datasets/{DATASET}/", "api: dataset detail")

    @task(3)
    def point(self):
        self.get(
            f"/api/datasets/{DATASET}/point/?lon={_lon()}&lat={_lat()}&f=csv&version={VERSION}", "api: point series"
        )

    @task(2)
    def small_subset(self):
        lon, lat = _lon(), _lat()
        self.get(
            f"/api/datasets/{DATASET}/subset/?bbox={lon - 2},{max(lat - 2, -90)},{lon + 2},{min(lat + 2, 90)}"
            f"&time=2015-01-01/2015-01-05&f=netcdf&version={VERSION}",
            "api: small subset",
        )

    @task(2)
    def estimate(self):
        self.get(f"/api/datasets/{DATASET}/subset/?bbox=-180,-90,180,90&estimate=1&version={VERSION}", "api: estimate")

    @task(2)
    def edr_position(self):
        self.get(
            f"/api/edr/collections/{DATASET}/position?coords=POINT({_lon()} {_lat()})&f=CoverageJSON", "edr: position"
        )
