"""Reproduce the whole research loop on the demo data (see `evaluation/demo.py` for the steps).

    manage.py demo_experiment [--steps 4] [--bbq-per-category 5] [--model-dir DIR] [--output report.html]

Re-runnable: the demo data, pools, snapshots and base model are reused (same inputs, same ids);
each invocation trains a new experiment and evaluates it, so earlier results stay as they were.
Training and evaluation runs execute in this process through the jobs runner (a `db_worker` that
is running may take one first; the command then waits for it).
"""
from __future__ import annotations

import time
import warnings
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from evaluation.demo import DemoError, DemoOptions, DemoResult, run_demo


class Command(BaseCommand):
    help = ("Demo rankings -> snapshots (humans, synthetic, both) -> five matched conditions trained on a tiny "
            "model -> BBQ subset and per-group preference accuracy -> the comparison report.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--steps", type=int, default=4, help="training steps per condition (default 4)")
        parser.add_argument("--bbq-per-category", type=int, default=5,
                            help="BBQ examples per category, six categories (default 5)")
        parser.add_argument("--model-dir", default="",
                            help="base model directory under MODELS_DIR, e.g. var/models/smollm2-135m-instruct "
                                 "(default: a tiny random Qwen2 built locally)")
        parser.add_argument("--output", default="",
                            help="the HTML report to write; .csv, .json and .md go beside it "
                                 "(default: ARTIFACTS_DIR/demo/report-<run id>.html)")
        parser.add_argument("--learning-rate", type=float, default=None,
                            help="DPO learning rate (default 1e-3 on the tiny model, 5e-7 with --model-dir)")
        parser.add_argument("--batch-size", type=int, default=2, help="per-device training batch size")
        parser.add_argument("--max-length", type=int, default=512, help="training max_length in tokens")
        parser.add_argument("--gpus", type=int, default=0, help="GPUs per training run (TRAINING_NODE_GPUS caps it)")
        parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="evaluation device")
        parser.add_argument("--rule", default="schulze", help="social welfare function of the snapshots")
        parser.add_argument("--seed", type=int, default=0,
                            help="training seed; the item split uses the first seed from here up that puts "
                                 "at least 4 items in the test split")

    def handle(self, *args: Any, **options: Any) -> None:
        for key in ("steps", "bbq_per_category", "batch_size", "max_length"):
            if options[key] < 1:
                raise CommandError(f"--{key.replace('_', '-')}: must be at least 1, got {options[key]}")
        demo = DemoOptions(**{k: options[k] for k in DemoOptions.__dataclass_fields__})
        started = time.monotonic()
        try:
            with warnings.catch_warnings():
                # Live run updates render the run fragment (its cancel form) without a request: harmless here.
                warnings.filterwarnings("ignore", message=r"A \{% csrf_token %\} was used", category=UserWarning)
                result = run_demo(demo, self.stdout.write)
        except DemoError as exc:
            raise CommandError(f"demo_experiment failed at step {exc}") from None
        self._summary(result, time.monotonic() - started)

    def _summary(self, result: DemoResult, seconds: float) -> None:
        project, erun = result.project, result.evaluation
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS(f"Research loop reproduced in {seconds:.0f} s "
                                 f"({', '.join(f'{k.split()[0]} {v:.0f} s' for k, v in result.timings.items())})"))
        write(f"project         {project.public_id}  {project.name}")
        write(f"snapshots       {'  '.join(f'{k}={v}' for k, v in result.snapshots.items())}")
        write(f"base model      {result.base_model.public_id}  {result.base_model.path}")
        write(f"experiment      {result.experiment.public_id}  "
              f"{reverse('training-experiment-detail', args=[project.public_id, result.experiment.public_id])}")
        write(f"evaluation run  {erun.run.public_id}  "
              f"{reverse('evaluation-run-report', args=[project.public_id, erun.pk])}  (log in as researcher)")
        for kind, path in result.exports.items():
            write(f"report ({kind:4})   {path}")
        self._table(result)

    def _table(self, result: DemoResult) -> None:
        """The headline numbers per condition, so the terminal shows what the report holds."""
        names = [c.name for c in result.report.conditions]
        wanted = [line for line in result.report.lines if line.source == "rlchf" and (
            (line.benchmark == "bbq" and line.scope == "overall")
            or (line.benchmark == "preference" and line.scope == "collective"))]
        width = max([len(line.label) for line in wanted] + [10])
        self.stdout.write("")
        self.stdout.write(" " * width + "  " + "  ".join(f"{n:>15}" for n in names))
        for line in wanted:
            cells = [line.cells.get(n, {}).get("value") for n in names]
            self.stdout.write(f"{line.label:<{width}}  " + "  ".join(
                f"{v:>15.3f}" if v is not None else f"{'n/a':>15}" for v in cells))
        for w in result.report.welfare:
            self.stdout.write(f"welfare: {w['model']:<16} mean group accuracy {w['mean']:.3f} (rank {w['rank_mean']}), "
                              f"worst group {w['worst_group']} {w['worst']:.3f} (rank {w['rank_worst']})")
