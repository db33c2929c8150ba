"""Mounted at /v1/ (quantdash/urls.py)."""

from django.urls import path

from runtime import openai_api

app_name = "openai"
urlpatterns = [
    path("models", openai_api.models, name="models"),
    path("chat/completions", openai_api.chat_completions, name="chat_completions"),
    path("completions", openai_api.completions, name="completions"),
]
