from django.shortcuts import render

from catalog.selectors import variants_visible_to


def playground(request):
    variants = variants_visible_to(request.user).select_related("model")
    return render(request, "runtime/playground.html", {"variants": variants})
