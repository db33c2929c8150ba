"""Copies each Evaluation.job_id into Job.evaluations (and back when reversed), before catalog
0005 drops the Evaluation.job column."""

from django.db import migrations

BATCH = 1000


def links_to_jobs(apps, schema_editor):
    Evaluation = apps.get_model("catalog", "Evaluation")
    Link = apps.get_model("jobs", "Job").evaluations.through
    pairs = Evaluation.objects.filter(job__isnull=False).values_list("pk", "job_id").order_by("pk")
    Link.objects.bulk_create([Link(evaluation_id=e, job_id=j) for e, j in pairs.iterator()],
                             batch_size=BATCH, ignore_conflicts=True)


def links_to_evaluations(apps, schema_editor):
    """The old column holds one job per evaluation: the most recent link wins (in practice
    there is only one, the evaluate job that measured it)."""
    Evaluation = apps.get_model("catalog", "Evaluation")
    Link = apps.get_model("jobs", "Job").evaluations.through
    job_of = dict(Link.objects.order_by("pk").values_list("evaluation_id", "job_id").iterator())
    for evaluation_id, job_id in job_of.items():
        Evaluation.objects.filter(pk=evaluation_id).update(job_id=job_id)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0004_evaluation_job_no_reverse'),
        ('jobs', '0006_job_evaluations'),
    ]

    operations = [
        migrations.RunPython(links_to_jobs, links_to_evaluations),
    ]
