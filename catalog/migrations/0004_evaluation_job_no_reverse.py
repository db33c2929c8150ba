"""Step 1 of moving the Evaluation -> Job link into the jobs app (the catalog must point at nothing
in jobs, the layer above it): the old FK gives up its reverse accessor `Job.evaluations` (a
state-only change, no SQL), so jobs 0006 can add the Job.evaluations many-to-many under that
name; jobs 0007 copies the links and 0005 here drops the column."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0003_evaluation'),
        ('jobs', '0005_job_needs_enqueue'),
    ]

    operations = [
        migrations.AlterField(
            model_name='evaluation',
            name='job',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
        ),
    ]
