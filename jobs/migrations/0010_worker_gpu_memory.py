from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0009_sweep'),
    ]

    operations = [
        migrations.AddField(
            model_name='worker',
            name='gpu_memory',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
