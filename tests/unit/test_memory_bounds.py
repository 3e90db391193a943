"""Memory that must stay bounded however long the server runs, and the allocator cap."""

from ferry import allocator


def test_an_operators_own_arena_setting_wins():
    assert not allocator.limit_arenas({"MALLOC_ARENA_MAX": "8"})
    assert not allocator.limit_arenas({"GLIBC_TUNABLES": "glibc.malloc.arena_max=8"})
