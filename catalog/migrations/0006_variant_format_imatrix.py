"""Variant.format gains "imatrix": importance matrices (llama-imatrix) are catalog artifacts.

Reversible: AlterField of choices only; no rows change."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0005_remove_evaluation_job'),
    ]

    operations = [
        migrations.AlterField(
            model_name='variant',
            name='format',
            field=models.CharField(choices=[('gguf', 'GGUF'), ('hf', 'HF safetensors'), ('bnb-int8', 'bitsandbytes int8'), ('bnb-nf4', 'bitsandbytes NF4'), ('gptq', 'GPTQ'), ('awq', 'AWQ'), ('imatrix', 'Importance matrix')], max_length=20),
        ),
    ]
