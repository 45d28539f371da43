from django.urls import path

from . import views

urlpatterns = [
    path("flash-images/", views.ReleaseList.as_view(), name="release-list"),
    path("flash-images/latest", views.LatestRelease.as_view(), name="release-latest"),
    path("flash-images/download", views.DownloadUrl.as_view(), name="release-download"),
]
