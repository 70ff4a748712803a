"""Worker queues: each task routed by name to the queue the settings name; a worker on one queue takes its
concurrency and time limits, and leaves the other queues' messages alone (real Redis, real workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
from celery import current_app
from django.conf import settings

from portal.celery import queue_options
from portal.subsets import params as subset_params
from portal.subsets import services as subset_services
from portal.subsets.models import SubsetJob
from products.models import GenerationRun
from products.services import request_run
from tests.grids import committed_grid

# the role (settings.WORKER_QUEUES key) of every task the portal registers: a new task is routed here on purpose
ROLE_OF_TASK = {
    "products.generate": "generation",
    "subsets.run_job": "subsets",
    "subsets.housekeeping": "housekeeping",
    "maps.housekeeping": "housekeeping",
}


def queue_of(role: str) -> str:
    return settings.WORKER_QUEUES[role]["queue"]


def routed_queue(task_name: str) -> str:
    """The queue Celery's router sends ``task_name`` to (as ``apply_async`` without options does)."""
    return current_app.amqp.router.route({}, task_name)["queue"].name


def test_every_registered_task_routes_to_the_queue_the_settings_name():
    registered = {name for name in current_app.tasks if not name.startswith("celery.")}
    assert registered == set(ROLE_OF_TASK), "a task without a queue of its own: route it in CELERY_TASK_ROUTES"
    for name, role in ROLE_OF_TASK.items():
        assert routed_queue(name) == queue_of(role), name
    # the queues are the settings' four, each a name of its own; anything unrouted goes to the default one
    assert set(current_app.amqp.queues) == {options["queue"] for options in settings.WORKER_QUEUES.values()}
    assert len(settings.WORKER_QUEUES) == 4
    assert routed_queue(f"tests.unrouted_{uuid.uuid4().hex[:6]}") == queue_of("default")
    # the generation queue's limits are products.generate's own (a worker default would not apply to it)
    generate = current_app.tasks["products.generate"]
    assert generate.soft_time_limit == settings.WORKER_QUEUES["generation"]["soft_time_limit"]
    assert generate.time_limit == settings.WORKER_QUEUES["generation"]["time_limit"]
    for options in settings.WORKER_QUEUES.values():
        assert options["concurrency"] >= 1 and 0 < options["soft_time_limit"] < options["time_limit"]


def test_a_worker_takes_the_options_of_the_first_queue_it_names():
    generation, subsets = settings.WORKER_QUEUES["generation"], settings.WORKER_QUEUES["subsets"]
    assert queue_options([generation["queue"]]) == generation
    assert queue_options(["not-a-queue", subsets["queue"], generation["queue"]]) == subsets
    assert queue_options(None) is None and queue_options([]) is None and queue_options(["not-a-queue"]) is None


SETTINGS_PROBE = """
import json, django
django.setup()
from portal.celery import app
print(json.dumps({
    "routes": {n: app.amqp.router.route({}, n)["queue"].name for n in sorted(app.tasks) if not n.startswith("celery.")},
    "default": app.amqp.router.route({}, "anything.unrouted")["queue"].name,
    "generate_limits": [app.tasks["products.generate"].soft_time_limit, app.tasks["products.generate"].time_limit],
}))
"""


def _probe(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=settings.BASE_DIR,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_queue_names_and_limits_come_from_the_environment():
    names = {role: f"{role}-{uuid.uuid4().hex[:6]}" for role in ("generation", "subsets", "housekeeping", "default")}
    done = _probe(
        **{f"QUEUE_{role.upper()}": name for role, name in names.items()},
        QUEUE_GENERATION_SOFT_TIME_LIMIT_SECONDS="7000",
        QUEUE_GENERATION_TIME_LIMIT_SECONDS="7200",
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["routes"] == {name: names[role] for name, role in ROLE_OF_TASK.items()}
    assert probe["default"] == names["default"]
    assert probe["generate_limits"] == [7000.0, 7200.0]
    # a soft limit not below the hard one, or two roles on one queue name, is refused at start, naming the cause
    bad = _probe(QUEUE_SUBSETS_SOFT_TIME_LIMIT_SECONDS="90", QUEUE_SUBSETS_TIME_LIMIT_SECONDS="60")
    assert bad.returncode != 0 and "ImproperlyConfigured" in bad.stderr and "subsets" in bad.stderr
    same = _probe(QUEUE_SUBSETS="generation")
    assert same.returncode != 0 and "a name of its own" in same.stderr


# --- real workers on the session's test database and broker ------------------------------------------------


def _wait(check, timeout: float, what: str, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if worker is not None and worker.poll() is not None:
            pytest.fail(f"the worker stopped while waiting for {what}:\n{worker.log_path.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.worker
def test_a_worker_on_one_queue_takes_its_concurrency_and_time_limits(service_env, tmp_path):
    """A prefork worker started with only ``-Q <subsets queue>`` (as `make run` starts it) reports that queue's
    concurrency and soft/hard limits, here set through the environment, to Celery's remote control."""
    node = f"subsets-{uuid.uuid4().hex[:8]}@test"
    env = dict(
        service_env,
        QUEUE_SUBSETS_CONCURRENCY="2",
        QUEUE_SUBSETS_SOFT_TIME_LIMIT_SECONDS="50",
        QUEUE_SUBSETS_TIME_LIMIT_SECONDS="60",
    )
    log_path = tmp_path / "prefork.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue_of("subsets"), "-n", node]
            + ["--loglevel=INFO", "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        worker.log_path = log_path
        try:
            inspect = current_app.control.inspect(destination=[node], timeout=1)
            stats = _wait(lambda: (inspect.stats() or {}).get(node), 120, "the worker's stats", worker)
            assert stats["pool"]["max-concurrency"] == 2, stats["pool"]
            assert list(stats["pool"]["timeouts"]) == [50.0, 60.0], stats["pool"]
            consumed = {q["name"] for q in (inspect.active_queues() or {}).get(node, [])}
            assert consumed == {queue_of("subsets")}
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.mark.worker
def test_a_generation_worker_leaves_a_subset_job_queued_and_the_suite_worker_runs_it(
    start_worker, django_db_blocker, test_broker
):
    """Separation: a worker on the generation queue only carries out a queued run (one that fails at once on an
    unknown parameter: seconds, not a whole generation) and never takes the subset job queued before it; the
    suite's worker (every queue) then runs the job."""
    broker = redis.Redis.from_url(test_broker)
    subsets_queue = queue_of("subsets")
    with committed_grid(django_db_blocker) as version, django_db_blocker.unblock():
        waiting = broker.llen(subsets_queue)
        f = subset_services.gridded_file(version, None)
        query = subset_params.parse_api("subset", {"f": "csv", "time": "2015-01-01/2015-01-02"})
        job, created = subset_services.submit_job(f, query, subset_services.plan(f, query))  # autocommit: sent now
        assert created and broker.llen(subsets_queue) == waiting + 1
        run = request_run("et_fusion", parameters={"not_a_parameter": 1})
        try:
            generation_worker = start_worker(queues=[queue_of("generation")])
            ran = _wait(
                lambda: GenerationRun.objects.exclude(status="queued").filter(id=run.id).exists(),
                180,
                "the generation worker to take the run",
                generation_worker,
            )
            assert ran
            finished = _wait(
                lambda: GenerationRun.objects.filter(id=run.id, status="failed").first(),
                60,
                "the run to fail on its unknown parameter",
                generation_worker,
            )
            assert "unknown et_fusion parameter" in finished.error
            time.sleep(2)  # ample time for a worker that consumed the subsets queue to have claimed the job
            assert SubsetJob.objects.get(id=job.id).status == "queued"
            assert broker.llen(subsets_queue) == waiting + 1
            assert "Task subsets.run_job[" not in generation_worker.log_path.read_text()

            suite_worker = start_worker()  # every queue, as every other worker test's
            done = _wait(
                lambda: SubsetJob.objects.filter(id=job.id, status__in=("done", "failed")).first(),
                180,
                "the suite's worker to run the job",
                suite_worker,
            )
            assert done.status == "done", done.error
            assert subset_services.job_file(done).stat().st_size == done.size > 0
            assert broker.llen(subsets_queue) == 0
        finally:
            GenerationRun.objects.filter(id=run.id).delete()
