"""billing's portal pages, one module a topic (``users``: User Management, the pages that
show or change Flex). ``billing/urls.py`` routes them."""
