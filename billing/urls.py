from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("teams/<slug:team>/billing/", views.tokens, name="tokens"),
    path("teams/<slug:team>/my-usage/", views.my_usage, name="my-usage"),
]
