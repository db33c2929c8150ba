"""The list page's search, filters and sorting (full page and htmx partial), the model page's
variant table, lineage tree and actions, and the JSON API's shapes."""

import pytest
from django.urls import reverse

from catalog.forms import CatalogFilterForm
from catalog.models import File, Model, Variant

pytestmark = pytest.mark.django_db


def _model(team, name, params, fmt="gguf", quant="Q4_K_M", tags=(), size=1000, parent=None):
    model = Model.objects.create(team=team, name=name, param_count=params, architecture="llama",
                                 tags=list(tags))
    variant = Variant.objects.create(model=model, format=fmt, quant_type=quant, parent=parent)
    File.objects.create(variant=variant, path="w.bin", bytes=size, sha256="0" * 64)
    return model


@pytest.fixture
def catalog(teams):
    red, blue = teams["red"], teams["blue"]
    return {
        "small": _model(red, "small-gguf", 135_000_000, tags=["chat"], size=100),
        "big": _model(red, "big-hf", 7_000_000_000, fmt="hf", quant="BF16", size=9000),
        "blue": _model(blue, "blue-awq", 1_500_000_000, fmt="awq", quant="4bit", tags=["chat"]),
    }


def _names(response) -> list[str]:
    import re

    return re.findall(r'/catalog/models/\d+/">([^<]+)<', response.content.decode())


@pytest.mark.parametrize("query, expected", [
    ("", ["big-hf", "blue-awq", "small-gguf"]),
    ("q=small", ["small-gguf"]),
    ("format=hf", ["big-hf"]),
    ("tag=chat", ["blue-awq", "small-gguf"]),
    ("min_params=1B", ["big-hf", "blue-awq"]),
    ("max_params=2b", ["blue-awq", "small-gguf"]),
    ("min_params=100M&max_params=1.5B", ["blue-awq", "small-gguf"]),
    ("min_params=2e9", ["big-hf"]),  # the planner's parser: scientific notation and separators too
    ("max_params=1,500,000,000", ["blue-awq", "small-gguf"]),
    ("sort=-params", ["big-hf", "blue-awq", "small-gguf"]),
    ("sort=params", ["small-gguf", "blue-awq", "big-hf"]),
    ("sort=-size", ["big-hf", "blue-awq", "small-gguf"]),
])
def test_filters_and_sorting_for_carol(client, teams, catalog, query, expected):
    client.force_login(teams["carol"])
    assert _names(client.get(f"/catalog/?{query}")) == expected


def test_size_filters_use_the_planners_parser(teams):
    form = CatalogFilterForm({"min_params": "7e9", "max_params": "1,5B"}, user=teams["carol"])
    assert not form.is_valid() and form.cleaned_data["min_params"] == 7_000_000_000
    assert "cannot parse '1,5B'" in form.errors["max_params"][0]  # not read as 15B
    assert CatalogFilterForm({"min_params": "0"}, user=teams["carol"]).filters().min_params == 0  # no 1M floor


def test_team_filter_and_htmx_partial(client, teams, catalog):
    client.force_login(teams["carol"])
    full = client.get(f"/catalog/?team={teams['blue'].pk}")
    assert _names(full) == ["blue-awq"] and b"<html" in full.content
    partial = client.get("/catalog/?q=big", headers={"HX-Request": "true"})
    assert _names(partial) == ["big-hf"] and b"<html" not in partial.content
    # A team the user is not in is not a valid choice: the filter is ignored, not leaked.
    client.force_login(teams["alice"])
    assert _names(client.get(f"/catalog/?team={teams['blue'].pk}")) == ["big-hf", "small-gguf"]


def test_model_page_lineage_metrics_and_action_links(client, teams):
    model = _model(teams["red"], "m", 100, fmt="hf", quant="BF16")
    base = model.variants.get()
    f16 = Variant.objects.create(model=model, format="gguf", quant_type="F16", parent=base)
    q4 = Variant.objects.create(model=model, format="gguf", quant_type="Q4_K_M", parent=f16,
                                metrics={"perplexity": 12.34, "tokens_per_second": 56.7})
    q8 = Variant.objects.create(model=model, format="gguf", quant_type="Q8_0", parent=f16)
    client.force_login(teams["alice"])
    page = client.get(reverse("catalog:model", args=[model.pk])).content.decode()
    assert "12.34" in page and "56.7" in page
    for link in [f"/planner/?model={model.pk}", f"/jobs/new?variant={q4.pk}",
                 f"/jobs/new?variant={q4.pk}&amp;method=evaluate", f"/playground/?variant={q4.pk}"]:
        assert link in page, link
    tree = client.get(reverse("catalog:lineage", args=[model.pk]), headers={"HX-Request": "true"})
    html = tree.content.decode()
    # base contains F16, which contains Q4_K_M and Q8_0: nested lists in that order.
    assert _nesting(html) == {base.pk: None, f16.pk: base.pk, q4.pk: f16.pk, q8.pk: f16.pk}


def _nesting(html: str) -> dict[int, int | None]:
    """variant id -> the id of the <li> it is nested in (None at the top)."""
    from html.parser import HTMLParser

    parents: dict[int, int | None] = {}
    stack: list[int] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "li":
                vid = int(dict(attrs)["data-variant"])
                parents[vid] = stack[-1] if stack else None
                stack.append(vid)

        def handle_endtag(self, tag):
            if tag == "li":
                stack.pop()

    Parser().feed(html)
    return parents


def test_api_shapes(client, teams, catalog):
    client.force_login(teams["alice"])
    listing = client.get("/api/catalog/models").json()
    assert [m["name"] for m in listing["models"]] == ["big-hf", "small-gguf"]
    detail = client.get(f"/api/catalog/models/{catalog['small'].pk}").json()
    assert detail["param_count"] == 135_000_000 and detail["team"] == "red"
    [variant] = detail["variants"]
    assert variant["quant_type"] == "Q4_K_M" and variant["files"][0]["download"].endswith("/download/")
    one = client.get(f"/api/catalog/variants/{variant['id']}").json()
    assert one["model"] == catalog["small"].pk and one["metrics"] == {}
    missing = client.get(f"/api/catalog/models/{catalog['blue'].pk}")
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}
