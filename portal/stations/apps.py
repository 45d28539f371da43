from django.apps import AppConfig


class StationsConfig(AppConfig):
    name = "portal.stations"
    label = "stations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI auth scheme)
