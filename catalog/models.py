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
        IMATRIX = "imatrix", "Importance matrix"

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="variants")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    format = models.CharField(max_length=20, choices=Format.choices)
    quant_type = models.CharField(max_length=40, blank=True, help_text="Q4_K_M, F16, bf16, nf4 ...")
    bits_per_weight = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="how it was made")
    tool_versions = models.JSONField(default=dict, blank=True)
    # Measured quality and speed, filled by evaluation jobs: {"perplexity": 12.3,
    # "tokens_per_second": 45.6, "dataset": <id>, ...}.
    metrics = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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

    def metric(self, key: str):
        """A measured value from `metrics` (or, for older rows, `params["metrics"]`)."""
        return (self.metrics or self.params.get("metrics") or {}).get(key)

    @property
    def perplexity(self):
        return self.metric("perplexity")

    @property
    def tokens_per_second(self):
        return self.metric("tokens_per_second")


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


class Dataset(models.Model):
    """Text a team evaluates or calibrates with: a file at ARTIFACT_ROOT/datasets/<id>/<path>,
    or (kind "hub") a reference to a Hugging Face Hub dataset id with no local file.

    `token_count` is counted by whitespace split (str.split) over the text: the .txt content, the
    string values of each .jsonl object, the string columns of a .parquet file. It is an estimate
    of size, not the count a particular tokenizer would give.
    """

    class Kind(models.TextChoices):
        TXT = "txt", "Text (.txt)"
        JSONL = "jsonl", "JSON lines (.jsonl)"
        PARQUET = "parquet", "Parquet"
        HUB = "hub", "Hugging Face Hub dataset"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    path = models.CharField(max_length=500, blank=True, help_text="file name inside its folder")
    hub_id = models.CharField(max_length=300, blank=True)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    records = models.BigIntegerField(null=True, blank=True, help_text="lines, objects or rows")
    token_count = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="dataset_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def directory(self) -> Path:
        return Path(settings.ARTIFACT_ROOT) / "datasets" / str(self.pk)

    @property
    def absolute_path(self) -> Path | None:
        return self.directory / self.path if self.path else None


class Evaluation(models.Model):
    """One measurement of a variant by an evaluation job (kind perplexity, kl, speed or memory):
    the numbers in `metrics` and how they were measured in `method` (dataset and its sha256,
    tokenizer, token ids digest, context, chunks, engine, threads, device ...), side by side.

    The job that measured it is `evaluation.jobs` (Job.evaluations): the link belongs to the jobs
    layer, which sits above the catalog: the catalog's tables point at nothing in jobs."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="evaluations")
    kind = models.CharField(max_length=40)
    metrics = models.JSONField(default=dict)
    method = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["variant", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of variant {self.variant_id}"


class BlindPair(models.Model):
    """A blind side-by-side: one prompt sent to two variants of a model, shown as A and B in an
    order drawn at random. Which variant was A is kept only here and told only with the vote,
    so the voter judges the replies, not the names. The vote is the owner's; voting again
    replaces it, and the leaderboard counts one vote per user, prompt and pair of variants."""

    class Vote(models.TextChoices):
        A = "a", "A is better"
        B = "b", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both bad"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="blind_pairs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="blind_pairs")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="blind_pairs")
    # A variant deleted takes its votes with it: a rating for something no longer there says nothing.
    variant_a = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="blind_pairs_as_a")
    variant_b = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="blind_pairs_as_b")
    system = models.TextField(blank=True)
    prompt = models.TextField()
    # The sampling settings both sides were sent with (the same seed for both).
    settings = models.JSONField(default=dict, blank=True)
    reply_a = models.TextField(blank=True)
    reply_b = models.TextField(blank=True)
    # As Message.stats; empty until that side's reply has ended (or failed).
    stats_a = models.JSONField(default=dict, blank=True)
    stats_b = models.JSONField(default=dict, blank=True)
    # Claimed when the side's stream starts, so a side is generated once.
    started_a = models.BooleanField(default=False)
    started_b = models.BooleanField(default=False)
    vote = models.CharField(max_length=10, choices=Vote.choices, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"blind pair #{self.pk}"


class TaskSet(models.Model):
    """Questions a team scores variants on with lm-evaluation-harness (a "tasks" job): an uploaded
    multiple-choice ("mc") or question/answer ("qa") JSONL normalized to items.jsonl, or an
    lm-eval task YAML ("yaml") with its data file stored as items.jsonl.

    `sha256` is of the stored items.jsonl, so the same file uploaded with another field mapping
    is another task. `config` is the lm-eval task config without its data location (the job adds
    it); catalog/tasksets.py builds both.
    """

    class Kind(models.TextChoices):
        MC = "mc", "Multiple choice"
        QA = "qa", "Question / answer"
        YAML = "yaml", "lm-eval task YAML"

    ITEMS = "items.jsonl"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tasksets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    sha256 = models.CharField(max_length=64)
    records = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    config = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="taskset_name_unique_in_team")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def directory(self) -> Path:
        return Path(settings.ARTIFACT_ROOT) / "tasks" / str(self.pk)

    @property
    def items_path(self) -> Path:
        return self.directory / self.ITEMS
