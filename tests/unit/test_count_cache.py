"""The list-total cache: counts once per key, bounded, least recently used out first."""

from marketplace.projects.counts import CountCache


def test_a_total_is_counted_once_per_key():
    cache = CountCache()
    calls = []

    def count():
        calls.append(1)
        return 42

    assert cache.get_or_count(("v1", "public"), count) == 42
    assert cache.get_or_count(("v1", "public"), count) == 42
    assert cache.get_or_count(("v2", "public"), count) == 42
    assert len(calls) == 2


def test_the_least_recently_used_total_goes_first():
    cache = CountCache(size=2)
    cache.get_or_count("a", lambda: 1)
    cache.get_or_count("b", lambda: 2)
    cache.get_or_count("a", lambda: 99)  # a is used again
    cache.get_or_count("c", lambda: 3)  # b goes

    assert cache.get_or_count("a", lambda: 99) == 1
    assert cache.get_or_count("b", lambda: 20) == 20
