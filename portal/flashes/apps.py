from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

QA = "QA"


class FlashesConfig(AppConfig):
    name = "portal.flashes"
    label = "flashes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_qa_group, sender=self)


def ensure_qa_group(**kwargs: Any) -> None:
    """QA reads flash history and stations; it changes nothing."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=QA)
    group.permissions.set(
        Permission.objects.filter(
            codename__in=["view_flashrecord", "view_station", "view_release"]
        )
    )
