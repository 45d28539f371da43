from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

RELEASE_MANAGERS = "Release managers"
RELEASE_MANAGER_PERMISSIONS = [
    "add_release",
    "change_release",
    "view_release",
    "view_downloadgrant",
]


class ReleasesConfig(AppConfig):
    name = "portal.releases"
    label = "releases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_release_managers_group, sender=self)


def ensure_release_managers_group(**kwargs: Any) -> None:
    """Release managers may handle releases and nothing else in the admin."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=RELEASE_MANAGERS)
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="releases",
            codename__in=RELEASE_MANAGER_PERMISSIONS,
        )
    )
