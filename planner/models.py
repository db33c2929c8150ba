from django.conf import settings
from django.db import models

from accounts.models import Team


class HardwareProfile(models.Model):
    """A machine a team describes for the planner (a workstation, a cloud box, a phone).

    Units follow planner.estimator.hardware: memory in GiB (what nvidia-smi shows), bandwidth in
    decimal GB/s and dense FP16 TFLOPS as vendors publish. `ram_gb` is host RAM for llama.cpp offload.
    """

    class Kind(models.TextChoices):
        GPU = "gpu", "GPU"
        APPLE = "apple", "Apple silicon"
        PHONE = "phone", "Phone"
        CPU = "cpu", "CPU only"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="hardware_profiles")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.GPU)
    memory_gb = models.FloatField(help_text="GiB per device")
    bandwidth_gbs = models.FloatField(help_text="GB/s per device")
    tflops = models.FloatField(help_text="dense FP16 TFLOPS per device")
    ram_gb = models.FloatField(default=64.0, help_text="host RAM (GiB) for offloaded layers")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="hardware_name_unique_in_team")]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """The value the planner form and API use for this profile."""
        return f"team:{self.pk}"
