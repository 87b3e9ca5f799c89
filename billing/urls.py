"""billing's portal pages (``app_name = "billing"``), included by ``flexadmin/urls.py``
before accounts' pages.

One block of patterns a feature, joined at the end, so that branches adding pages to
billing merge without touching each other's lines.
"""

from django.urls import path

from billing.views import customers, planner, tokens, users

app_name = "billing"

# --- User Management: By User, a person's Flex, bulk changes, CSV import, By Product -------------
# The people-only actions (invite, role, remove, primary admin, resend) are accounts' pages
# under the same teams/<team>/users/ prefix.
user_management = [
    path("teams/<slug:team>/users/", users.member_list, name="member-list"),
    path("teams/<slug:team>/users/export/", users.member_export, name="member-export"),
    path("teams/<slug:team>/users/bulk/", users.member_bulk, name="member-bulk"),
    path("teams/<slug:team>/users/import/", users.member_import, name="member-import"),
    path("teams/<slug:team>/users/products/", users.flex_product_list, name="flex-products"),
    path("teams/<slug:team>/users/products/<slug:product>/", users.flex_product_detail, name="flex-product"),
    path("teams/<slug:team>/users/<int:pk>/", users.member_detail, name="member-detail"),
    path("teams/<slug:team>/users/<int:pk>/flex/", users.member_flex, name="member-flex"),
    path("teams/<slug:team>/users/<int:pk>/flex/remove/", users.member_flex_remove, name="member-flex-remove"),
]
# --- end of User Management ------------------------------------------------------------------------

# --- Billing & Orders, and a member's own usage ---------------------------------------------------
billing_and_orders = [
    path("teams/<slug:team>/billing/", tokens.tokens, name="tokens"),
    path("teams/<slug:team>/my-usage/", tokens.my_usage, name="my-usage"),
]

# --- Sales reps: Customers, a customer, purchases, moves, Orders ----------------------------------
# The exports' paths hold a dot, which no team's slug can: they never shadow a customer.
sales_reps = [
    path("customers/", customers.customer_list, name="customer-list"),
    path("customers/export.csv", customers.customer_export, name="customer-export"),
    path("customers/<slug:team>/", customers.customer_detail, name="customer-detail"),
    path("customers/<slug:team>/purchase/", customers.customer_purchase, name="customer-purchase"),
    path("customers/<slug:team>/move/", customers.customer_move, name="customer-move"),
    path("customers/<slug:team>/plan/", planner.customer_plan, name="customer-plan"),
    path("orders/", customers.orders, name="orders"),
    path("orders/export.csv", customers.orders_export, {"fmt": "csv"}, name="orders-export-csv"),
    path("orders/export.xlsx", customers.orders_export, {"fmt": "xlsx"}, name="orders-export-xlsx"),
]
# --- end of sales reps ----------------------------------------------------------------------------

urlpatterns = [*user_management, *billing_and_orders, *sales_reps]
