"""Data managers in the admin: regenerate a product and watch its run."""

from __future__ import annotations

import dataclasses

import pytest
from django.urls import reverse

from products.models import GenerationRun
from products.registry import PRODUCTS

pytestmark = pytest.mark.django_db


def test_the_regenerate_action_queues_a_run_of_the_datasets_product(admin_client, admin_user):
    dataset_id = PRODUCTS["et_fusion"].dataset_id
    before = GenerationRun.objects.count()
    response = admin_client.post(
        reverse("admin:catalog_dataset_changelist"),
        {"action": "regenerate", "_selected_action": [dataset_id]},
        follow=True,
    )
    assert response.status_code == 200
    run = GenerationRun.objects.latest("created_at")
    assert GenerationRun.objects.count() == before + 1
    assert (run.product, run.status, run.dataset_id, run.requested_by) == (
        "et_fusion",
        "queued",
        dataset_id,
        admin_user,
    )
    assert f"run {run.id} queued" in response.content.decode()


def test_a_dataset_without_a_generator_is_refused_with_a_message(admin_client, monkeypatch):
    monkeypatch.setitem(PRODUCTS, "tws_rec", dataclasses.replace(PRODUCTS["tws_rec"], implemented=False))
    dataset_id = PRODUCTS["tws_rec"].dataset_id
    before = GenerationRun.objects.count()
    response = admin_client.post(
        reverse("admin:catalog_dataset_changelist"),
        {"action": "regenerate", "_selected_action": [dataset_id]},
        follow=True,
    )
    assert GenerationRun.objects.count() == before
    assert "has no generator yet" in response.content.decode()


def test_an_active_run_page_refreshes_itself_and_a_finished_one_does_not(admin_client, et_run):
    finished = admin_client.get(reverse("admin:products_generationrun_change", args=[et_run.id])).content.decode()
    assert 'http-equiv="refresh"' not in finished and "succeeded" in finished.lower()
    queued = GenerationRun.objects.create(product="et_fusion", dataset=et_run.dataset)
    page = admin_client.get(reverse("admin:products_generationrun_change", args=[queued.id])).content.decode()
    assert 'http-equiv="refresh"' in page


def test_admin_lists_datasets_stations_and_runs(admin_client, et_run):
    for name in [
        "catalog_dataset",
        "ingestion_station",
        "products_generationrun",
        "ingestion_ingestrun",
        "ingestion_gridfile",
        "ingestion_observation",
    ]:
        response = admin_client.get(reverse(f"admin:{name}_changelist"))
        assert response.status_code == 200, name
    assert "DE-Hai" in admin_client.get(reverse("admin:ingestion_station_changelist") + "?q=DE-Hai").content.decode()
