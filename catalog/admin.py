from django.contrib import admin

from catalog.models import File, Model, Variant


class FileInline(admin.TabularInline):
    model = File
    extra = 0


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "architecture", "param_count", "created_at"]
    list_filter = ["team"]
    search_fields = ["name"]


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ["model", "format", "quant_type", "bits_per_weight", "created_at"]
    list_filter = ["format"]
    inlines = [FileInline]
