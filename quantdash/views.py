from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control

from catalog.selectors import models_visible_to
from jobs.models import Worker
from jobs.selectors import jobs_visible_to


def home(request):
    return render(
        request,
        "home.html",
        {
            "models": models_visible_to(request.user).prefetch_related("variants__files")[:20],
            "jobs": jobs_visible_to(request.user).select_related("input_variant__model")[:10],
            "workers": Worker.objects.all(),
        },
    )


FAVICON = settings.BASE_DIR / "static" / "favicon.ico"


@login_not_required
@cache_control(public=True, max_age=86400)
def favicon(request):
    """/favicon.ico, which browsers ask for on every site whatever the page's <link rel=icon>
    says (the SVG one in base.html); served from static/ so it is never a 404 or a login redirect."""
    return FileResponse(open(FAVICON, "rb"), content_type="image/x-icon")
