"""django-tables2's cell rendering without one signature inspection per cell.

For every cell django-tables2 calls the column's ``render`` (or a table's ``render_foo``)
through ``utils.call_with_appropriate``, which asks ``inspect.signature`` which arguments
the function takes, anew for each cell: on a report page of a few hundred cells that is
about half of the time spent in its tables. The answer depends only on the function, so
``remember_signatures`` (run once, from ``CoreConfig.ready``) replaces the module's
``signature`` with one that keeps it: per function, and for a bound method per underlying
function (the ``self`` it drops is the same for every instance). The cache is bounded, so
callables made on the fly can't make it grow without end.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from django_tables2 import utils

CACHE_SIZE = 1024


def remember_signatures() -> None:
    original = utils.signature
    if getattr(original, "remembers", False):
        return

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def of_function(function: Callable, bound: bool) -> tuple:
        # A bound method's signature is its function's without the first argument.
        return original(functools.partial(function, None) if bound else function)

    def signature(fn: Callable) -> tuple:
        if inspect.ismethod(fn):
            return of_function(fn.__func__, True)
        try:
            return of_function(fn, False)
        except TypeError:  # not hashable: ask every time, as django-tables2 does
            return original(fn)

    signature.remembers = True
    utils.signature = signature
