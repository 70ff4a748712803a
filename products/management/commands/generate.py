import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from products.lineage import Stages
from products.registry import PRODUCTS
from products.services import RunError, create_run, execute_run, latest_version, request_run


class StageProgress:
    """Shows a run's stages as :class:`products.lineage.Stages` reports them: a tqdm bar on a terminal
    (one step per stage, out of the stages of the product's last succeeded run when known), plain lines
    ("<product>: stage 2/5 train started", "... done") otherwise. Writes to ``stream`` (stderr), so
    that ``--json`` output stays one JSON object on stdout."""

    def __init__(self, product: str, stream, *, terminal: bool | None = None):
        self.product, self.stream = product, stream
        self.terminal = stream.isatty() if terminal is None else terminal
        self.bar: tqdm | None = None

    def __call__(self, progress: dict) -> None:
        of, number, stage, state = progress["of"], progress["number"], progress["stage"], progress["state"]
        if not self.terminal:
            where = f"{number}/{of}" if of else f"{number}"
            fraction = (
                f" ({progress['fraction']:.0%} of the last run's time)" if progress["fraction"] is not None else ""
            )
            self.stream.write(f"{self.product}: stage {where} {stage} {state}{fraction}\n")
            self.stream.flush()
            return
        if self.bar is None:
            self.bar = tqdm(total=of, desc=self.product, unit="stage", file=self.stream, dynamic_ncols=True)
        if of and number > (self.bar.total or 0):  # more stages than the last run had
            self.bar.total = number
        self.bar.set_postfix_str(f"{stage} {state}", refresh=False)
        self.bar.n = len(progress["done"])
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Command(BaseCommand):
    help = "Generate a product now (or enqueue it on Celery with --async) and publish a new version."

    def add_arguments(self, parser):
        parser.add_argument("product", choices=sorted(PRODUCTS))
        parser.add_argument("--async", action="store_true", dest="enqueue", help="enqueue on Celery and return")
        parser.add_argument("--sites", help="comma-separated station codes (a quick run on a few sites)")
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing when a version of the product is already published"
        )
        parser.add_argument("--params", default="{}", help="JSON object of generator parameters")
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print the run (id, status, version, summary, timings) as one JSON object",
        )

    def handle(self, *args, product, enqueue, sites, params, if_missing, as_json, **options):
        try:
            parameters = json.loads(params)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params: expected a JSON object ({exc})") from None
        if not isinstance(parameters, dict):
            raise CommandError("--params: expected a JSON object")
        if sites:
            parameters["sites"] = [s.strip() for s in sites.split(",") if s.strip()]
        if if_missing and (version := latest_version(product)):
            if as_json:
                self.stdout.write(json.dumps({"product": product, "status": "skipped", "version": version.number}))
            else:
                self.stdout.write(
                    f"{product}: {version} is already published; nothing to do (without --if-missing, "
                    "a new version is generated)"
                )
            return
        try:
            if enqueue:
                run = request_run(product, parameters=parameters)
                self.stdout.write(
                    json.dumps({"product": product, "run": run.id, "status": run.status})
                    if as_json
                    else f"queued run {run.id} of {product}"
                )
                return
            progress = StageProgress(product, self.stderr._out)
            Stages.listeners.append(progress)
            try:
                run = execute_run(create_run(product, parameters=parameters).id)
            finally:
                Stages.listeners.remove(progress)
                progress.close()
        except RunError as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "product": product,
                        "run": run.id,
                        "status": run.status,
                        "version": run.version.number if run.version else None,
                        "seconds": run.seconds,
                        "summary": run.summary,
                        "timings": run.timings,
                        "error": run.error.splitlines()[0] if run.error else None,
                    }
                )
            )
        if run.status != run.Status.SUCCEEDED:
            raise CommandError(f"run {run.id} failed: {run.error.splitlines()[0] if run.error else ''}")
        if not as_json:
            self.stdout.write(
                f"run {run.id}: published {run.version} in {run.seconds:.1f} s; summary {json.dumps(run.summary)}"
            )
