from django.core.management.base import BaseCommand

from jobs.cli import (add_run_arguments, evaluations_json, raise_if_failed, status_line, submit_and_finish,
                      variant_or_error)


def task_ref(value: str):
    """A task set id (an int) or builtin:<lm-eval task name>, as the job's "tasks" list holds them."""
    return int(value) if value.isdigit() else value


class Command(BaseCommand):
    help = ("Scores a catalog variant on task sets with lm-evaluation-harness (a \"tasks\" job): "
            "queue it (default), wait for a worker, or run it inline; prints each task's metrics "
            "with their standard errors.")

    def add_arguments(self, parser):
        parser.add_argument("variant_id", type=int)
        parser.add_argument("--task", dest="tasks", action="append", required=True, type=task_ref,
                            help="task set id, or builtin:<lm-eval task> (needs the Hub); repeatable")
        parser.add_argument("--num-fewshot", type=int)
        parser.add_argument("--limit", type=int, help="items per task (default: all)")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--max-gen-toks", type=int)
        parser.add_argument("--threads", type=int)
        add_run_arguments(parser)

    def handle(self, *args, **o):
        variant = variant_or_error(o["variant_id"])
        params = {k: v for k, v in {
            "tasks": o["tasks"], "num_fewshot": o["num_fewshot"], "limit": o["limit"],
            "seed": o["seed"], "max_gen_toks": o["max_gen_toks"], "threads": o["threads"],
        }.items() if v is not None}
        job = submit_and_finish(variant=variant, method="tasks", params=params,
                                inline=o["inline"], wait=o["wait"], another_copy=o["another_copy"])
        evaluations = list(job.evaluations.order_by("pk"))
        if o["json"]:
            self.stdout.write(evaluations_json(job, variant))
        else:
            self.stdout.write(status_line(job))
            for e in evaluations:
                results = ", ".join(
                    f"{name} {r['value']:.4f}"
                    + (f" ± {r['stderr']:.4f}" if r.get("stderr") is not None else "")
                    for name, r in e.metrics.get("results", {}).items())
                self.stdout.write(f"{e.metrics.get('task')}: {results} over {e.metrics.get('samples')} "
                                  f"items (protocol {e.method.get('protocol', '')[:12]})")
        raise_if_failed(job)
