from django.urls import path

from . import views

urlpatterns = [
    path("flash-records/", views.FlashRecordList.as_view(), name="flash-record-list"),
    path(
        "flash-records/<uuid:pk>",
        views.FlashRecordDetail.as_view(),
        name="flash-record",
    ),
    path(
        "serials/<str:serial>/flash-records",
        views.SerialHistory.as_view(),
        name="serial-history",
    ),
]
