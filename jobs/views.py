from django.shortcuts import render

from jobs.models import Worker
from jobs.selectors import jobs_visible_to


def job_list(request):
    return render(
        request,
        "jobs/list.html",
        {"jobs": jobs_visible_to(request.user)[:100], "workers": Worker.objects.all()},
    )
