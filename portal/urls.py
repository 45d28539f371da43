from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Firmware portal"
admin.site.site_title = "Firmware portal"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("portal.releases.urls")),
    path("api/", include("portal.flashes.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
