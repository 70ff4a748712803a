"""Progress people can see: the stages of a run stored as they go (``summary["progress"]``), shown by
``manage.py generate`` (plain lines off a terminal, a tqdm bar on one) and on the admin's run page;
``manage.py ingest`` file by file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from products import services
from products.lineage import ProductOutput, Stages
from products.management.commands.generate import StageProgress
from products.models import GenerationRun
from products.pipelines import PIPELINES


def test_plain_lines_off_a_terminal_and_a_bar_on_one():
    out = io.StringIO()
    show = StageProgress("tws_rec", out, terminal=False)
    show({"stage": "load", "state": "running", "number": 1, "of": 3, "done": [], "fraction": 0.0})
    show({"stage": "load", "state": "done", "number": 1, "of": 3, "done": ["load"], "fraction": 0.25})
    assert out.getvalue().splitlines() == [
        "tws_rec: stage 1/3 load running (0% of the last run's time)",
        "tws_rec: stage 1/3 load done (25% of the last run's time)",
    ]
    bar = io.StringIO()
    show = StageProgress("tws_rec", bar, terminal=True)
    show({"stage": "train", "state": "running", "number": 2, "of": 3, "done": ["load"], "fraction": None})
    show.close()
    assert "tws_rec" in bar.getvalue() and "1/3" in bar.getvalue() and "train running" in bar.getvalue()


@pytest.mark.django_db
def test_stages_store_where_the_run_is_and_estimate_from_the_last_run(django_db_setup):
    seen = []
    Stages.listeners.append(seen.append)
    # no earlier succeeded run (other tests of the session may have committed one): only in this transaction
    GenerationRun.objects.filter(product="tws_rec", status=GenerationRun.Status.SUCCEEDED).update(
        status=GenerationRun.Status.FAILED
    )
    try:
        first = services.create_run("tws_rec")
        stages = Stages(first)
        with stages("load"):
            inside = GenerationRun.objects.get(id=first.id).summary["progress"]
        assert (inside["stage"], inside["state"], inside["number"], inside["of"], inside["fraction"]) == (
            "load",
            "running",
            1,
            None,
            None,
        )
        GenerationRun.objects.filter(id=first.id).update(
            status=GenerationRun.Status.SUCCEEDED, timings={"load": 1.0, "train": 3.0}
        )
        second = services.create_run("tws_rec")
        stages = Stages(second)
        with stages("load"):
            pass
        with stages("train"):
            inside = GenerationRun.objects.get(id=second.id).summary["progress"]
        assert (inside["number"], inside["of"], inside["done"], inside["fraction"]) == (2, 2, ["load"], 0.25)
        done = GenerationRun.objects.get(id=second.id).summary["progress"]
        assert done["state"] == "done" and done["fraction"] == 1.0
        assert [(p["stage"], p["state"]) for p in seen[-4:]] == [
            ("load", "running"),
            ("load", "done"),
            ("train", "running"),
            ("train", "done"),
        ]
    finally:
        Stages.listeners.remove(seen.append)


@pytest.mark.django_db
def test_the_admin_run_page_shows_the_current_stage(django_db_setup, admin_client):
    run = services.create_run("tws_rec")
    GenerationRun.objects.filter(id=run.id).update(status=GenerationRun.Status.RUNNING)
    stages = Stages(run)
    with stages("load_inputs"):
        pass
    with stages("train_validate_reconstruct"):
        html = admin_client.get(f"/admin/products/generationrun/{run.id}/change/").content.decode()
    assert 'class="run-progress"' in html and "train_validate_reconstruct" in html and "load_inputs" in html


@pytest.mark.django_db
def test_generate_shows_each_stage(django_db_setup, monkeypatch):
    def pipeline(run, workdir: Path) -> ProductOutput:
        stages = Stages(run)
        with stages("load_inputs"):
            (workdir / "table.csv").write_text("a,b\n1,2\n")
        with stages("write"):
            pass
        return ProductOutput(files={"table.csv": "a small table"}, summary={"count": 1})

    monkeypatch.setitem(PIPELINES, "tws_rec", pipeline)
    err, out = io.StringIO(), io.StringIO()
    call_command("generate", "tws_rec", stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    assert lines == [
        "tws_rec: stage 1 load_inputs running",
        "tws_rec: stage 1 load_inputs done",
        "tws_rec: stage 2 write running",
        "tws_rec: stage 2 write done",
    ] or lines[0].startswith("tws_rec: stage 1/")  # a succeeded tws_rec run of this session gives "of"
    assert "published" in out.getvalue() and Stages.listeners == []
    run = GenerationRun.objects.filter(product="tws_rec").latest("created_at")
    assert run.summary == {"count": 1}  # the pipeline's summary replaces the progress once published


@pytest.mark.django_db
def test_ingest_says_which_file_it_is_on(django_db_setup, shared_data, tmp_path):
    source = shared_data / "lehmannfa_basin_water_budget" / "R_GRUN_monthly.csv"
    folder = tmp_path / "basins"
    folder.mkdir()
    for name in ("R_GRUN_monthly.csv", "R_ERA5_Land_monthly.csv"):  # two small copies: the first 5 basins
        (folder / name).write_text("\n".join(source.read_text().splitlines()[:6]).replace("R_GRUN", name[:-12]) + "\n")
    for name in ("basins.dbf", "basins.prj"):  # the basin attributes the reader reads beside each table
        (folder / name).write_bytes((source.parent / name).read_bytes())
    err, out = io.StringIO(), io.StringIO()
    call_command("ingest", "basins", str(folder), stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[0] for line in lines] == ["ingest basins: file 1/2", "ingest basins: file 2/2"]
    assert {line.rsplit(" ", 1)[1] for line in lines} == {"R_ERA5_Land_monthly.csv", "R_GRUN_monthly.csv"}
    assert "2 files" in out.getvalue()
