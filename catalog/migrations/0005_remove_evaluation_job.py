"""Drops Evaluation.job once jobs 0007 has copied it into Job.evaluations (the catalog
points at nothing in jobs, the layer above it)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0004_evaluation_job_no_reverse'),
        ('jobs', '0007_job_evaluations_from_evaluation_job'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='evaluation',
            name='job',
        ),
    ]
