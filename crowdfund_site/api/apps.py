from django.apps import AppConfig
from django.urls import register_converter


class ApiConfig(AppConfig):
    name = "crowdfund_site.api"
    label = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .fields import IdConverter

        register_converter(IdConverter, "api_id")
