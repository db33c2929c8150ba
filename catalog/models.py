from pathlib import Path

from django.conf import settings
from django.db import models

from accounts.models import Team


class Model(models.Model):
    """A base model the team works with, e.g. SmolLM2-135M-Instruct."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    # Fields the planner needs, normalised to HF config.json names (from config.json or GGUF header).
    config = models.JSONField(default=dict, blank=True)
    architecture = models.CharField(max_length=100, blank=True)
    param_count = models.BigIntegerField(null=True, blank=True)
    license = models.CharField(max_length=100, blank=True)
    model_card = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=300, blank=True, help_text="demo, upload, hub:REPO@REV, path")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="model_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One concrete artifact of a model: a set of files in one format at one precision."""

    class Format(models.TextChoices):
        GGUF = "gguf", "GGUF"
        HF = "hf", "HF safetensors"
        BNB_INT8 = "bnb-int8", "bitsandbytes int8"
        BNB_NF4 = "bnb-nf4", "bitsandbytes NF4"
        GPTQ = "gptq", "GPTQ"
        AWQ = "awq", "AWQ"

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="variants")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    format = models.CharField(max_length=20, choices=Format.choices)
    quant_type = models.CharField(max_length=40, blank=True, help_text="Q4_K_M, F16, bf16, nf4 ...")
    bits_per_weight = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="how it was made")
    tool_versions = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "created_at"]

    def __str__(self) -> str:
        return f"{self.model.name} [{self.label}]"

    @property
    def label(self) -> str:
        return f"{self.get_format_display()} {self.quant_type}".strip()

    @property
    def directory(self) -> Path:
        return Path(settings.ARTIFACT_ROOT) / "variants" / str(self.pk)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files.all())


class File(models.Model):
    """A file of a variant, stored at ARTIFACT_ROOT/variants/<variant id>/<path>."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=500)
    bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["variant", "path"], name="file_path_unique_in_variant")
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def absolute_path(self) -> Path:
        return self.variant.directory / self.path
