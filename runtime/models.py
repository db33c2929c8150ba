import hashlib

from django.conf import settings
from django.db import models

from accounts.models import Team
from catalog.models import Variant


class Comparison(models.Model):
    """A side-by-side chat: the same messages sent to several variants at once. Each column is a
    Conversation pointing here, titled "<title> · <its variant>"; deleting this deletes them."""

    MAX_COLUMNS = 4

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="comparisons")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="comparisons")
    title = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.title


class Conversation(models.Model):
    """A chat with one variant in the playground; a column of a Comparison when side by side."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="conversations")
    variant = models.ForeignKey(Variant, null=True, on_delete=models.SET_NULL,
                                related_name="conversations")
    comparison = models.ForeignKey(Comparison, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="conversations")
    title = models.CharField(max_length=200)
    # The sampling settings its last message was sent with, as the playground sent them
    # (temperature, top_p, ..., logprobs; a field left blank is absent): reopening the chat puts
    # them back in the form, so a chat held at temperature 0 goes on at 0.
    settings = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=Role.choices)
    content = models.TextField()
    # For assistant messages: prompt_tokens, completion_tokens, ttft_s, tokens_per_s, context_used,
    # n_ctx, finish_reason (as the runtime server reported them).
    stats = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user key for the OpenAI-compatible API. Only the SHA-256 of the key is stored; the
    key itself is shown once, when it is made. `prefix` (its first characters) identifies it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
