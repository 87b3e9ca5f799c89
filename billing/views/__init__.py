"""billing's portal pages, one module a topic: ``users`` (User Management, the pages that
show or change Flex) and ``tokens`` (Billing & Orders > Flex tokens, My usage).
``billing/urls.py`` routes them."""
