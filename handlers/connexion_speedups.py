"""A patch of Connexion's private internals: per-request work it repeats although the
result never changes.

What it replaces: `AsyncOperation.fn` (a property, rebuilt per request) becomes a cached
property; `BaseDecorator.decorate` is memoised per handler;
`security.inspect_function_arguments` is memoised.

For every request Connexion builds a new decorator around the handler
(`AsyncOperation.fn` is a property), and that decorator wraps the handler again
(`decorate`: a parameter and a response decorator, each inspecting the handler's
signature); the security layer inspects the security function's signature on every
call too. All of it depends only on the function, fixed when the API is added, so
each is done once per function. `bench/bench_connexion_speedups.py` measures what it
saves: 0.08-0.14 ms of CPU of each in-process request of about 1 ms (the test client's
share included) on the project's 2-core machine.

Written against Connexion 3.3 (`WRITTEN_AGAINST`): with any other minor version, or
with internals that differ, nothing is patched.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import version

from connexion import security
from connexion.apps import asynchronous
from connexion.decorators import main as decorators

_DECORATED = "_ferry_decorated"
# The Connexion minor versions whose internals this patch was read against.
WRITTEN_AGAINST = ((3, 3),)

log = logging.getLogger(__name__)


def applies_to(connexion_version: str) -> bool:
    major_minor = tuple(int(part) for part in connexion_version.split(".")[:2])
    return major_minor in WRITTEN_AGAINST


def _decorate_once(decorate):
    @functools.wraps(decorate)
    def once(self, function):
        # The handler is kept alongside its wrapping, so that its id is never reused.
        cache = self.__dict__.setdefault(_DECORATED, {})
        known = cache.get(id(function))
        if known is None:
            known = cache[id(function)] = (function, decorate(self, function))
        return known[1]

    once.ferry_once = True
    return once


def decorate_handlers_once() -> None:
    installed = version("connexion")
    if not applies_to(installed):
        log.info("connexion %s: its per-request work is left as it is", installed)
        return
    fn = getattr(asynchronous.AsyncOperation, "fn", None)
    if isinstance(fn, property) and fn.fget is not None:
        built_once = functools.cached_property(fn.fget)
        built_once.__set_name__(asynchronous.AsyncOperation, "fn")
        asynchronous.AsyncOperation.fn = built_once
    decorate = getattr(decorators.BaseDecorator, "decorate", None)
    if callable(decorate) and not getattr(decorate, "ferry_once", False):
        decorators.BaseDecorator.decorate = _decorate_once(decorate)
    inspect_arguments = getattr(security, "inspect_function_arguments", None)
    if callable(inspect_arguments) and not hasattr(inspect_arguments, "cache_info"):
        security.inspect_function_arguments = functools.cache(inspect_arguments)
