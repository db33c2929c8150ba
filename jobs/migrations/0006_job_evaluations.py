"""Job.evaluations: the link from a job to the catalog Evaluation rows it measured, owned by the
jobs app so the catalog points at nothing above it. Filled from the old
Evaluation.job column by 0007 (a separate migration: on PostgreSQL the rows it writes must be
committed before a later step alters the tables they reference)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0004_evaluation_job_no_reverse'),
        ('jobs', '0005_job_needs_enqueue'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='evaluations',
            field=models.ManyToManyField(blank=True, related_name='jobs', to='catalog.evaluation'),
        ),
    ]
