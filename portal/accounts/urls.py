from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("tokens/", views.token_create, name="token_create"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("apply/<str:dataset_id>/", views.apply, name="apply"),
    path("licence/<str:dataset_id>/", views.licence, name="licence"),
]
