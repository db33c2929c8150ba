"""Template filters over jobs.presentation (one wording for jobs on every page)."""

from django import template
from django.utils import timezone

from jobs import presentation

register = template.Library()


@register.filter
def job_title(job) -> str:
    return presentation.job_title(job)


@register.filter
def params_text(params) -> str:
    return presentation.params_text(params)


@register.filter
def params_rows(params) -> list[tuple[str, str]]:
    return presentation.params_rows(params)


@register.filter
def job_timing(job) -> str:
    return presentation.job_timing(job, timezone.now())


@register.filter
def log_split(tail: str) -> dict:
    own, warnings = presentation.split_log(tail)
    return {"own": "\n".join(own), "warnings": "\n".join(warnings), "warning_count": presentation.warning_count(warnings)}
