from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0007_job_evaluations_from_evaluation_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="worker",
            name="measurements",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="worker",
            name="measured_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
