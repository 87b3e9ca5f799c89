"""Reporting's pages (``app_name = "reporting"``), included by ``flexadmin/urls.py`` before
accounts' pages."""

from django.urls import path

from reporting import views

app_name = "reporting"

urlpatterns = [
    path("teams/<slug:team>/reports/", views.summary, name="summary"),
    path("teams/<slug:team>/reports/products/", views.by_product, name="by-product"),
    path("teams/<slug:team>/reports/products/<slug:product>/", views.product_detail, name="product-detail"),
    path("teams/<slug:team>/reports/users/", views.by_user, name="by-user"),
    path("teams/<slug:team>/reports/users/<int:user_id>/", views.user_detail, name="user-detail"),
    path("teams/<slug:team>/reports/denials/", views.denials, name="denials"),
    path("teams/<slug:team>/reports/export/<slug:name>.<slug:fmt>", views.export, name="export"),
    # A customer's reports for the sales reps of its reseller: Summary and By Product only.
    path("customers/<slug:team>/reports/", views.customer_summary, name="customer-summary"),
    path("customers/<slug:team>/reports/products/", views.customer_by_product, name="customer-by-product"),
    path(
        "customers/<slug:team>/reports/products/<slug:product>/",
        views.customer_product_detail,
        name="customer-product-detail",
    ),
    path("customers/<slug:team>/reports/export/<slug:name>.<slug:fmt>", views.customer_export, name="customer-export"),
]
