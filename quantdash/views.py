from django.shortcuts import render

from catalog.selectors import models_visible_to
from jobs.models import Worker
from jobs.selectors import jobs_visible_to


def home(request):
    return render(
        request,
        "home.html",
        {
            "models": models_visible_to(request.user).prefetch_related("variants__files")[:20],
            "jobs": jobs_visible_to(request.user)[:10],
            "workers": Worker.objects.all(),
        },
    )
