"""``--redis-url``'s Sentinel form, read without connecting."""

from __future__ import annotations

import pytest

from tickroom.server.cluster.redaction import redacted
from tickroom.server.cluster.store.redis_url import (
    BadRedisURL,
    ClusterTarget,
    SentinelTarget,
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis+sentinel://10.0.0.1:26379/games", SentinelTarget((("10.0.0.1", 26379),), "games")),
        (
            "redis+sentinel://s1:26379,s2:26380,[::1]:26381/games/3",
            SentinelTarget((("s1", 26379), ("s2", 26380), ("::1", 26381)), "games", 3),
        ),
        ("redis+sentinel://s1/games", SentinelTarget((("s1", 26379),), "games")),
        (
            "redis+sentinel://app:p%40ss@s1:1,s2:2/games/1?sentinel_password=sp",
            SentinelTarget((("s1", 1), ("s2", 2)), "games", 1, "app", "p@ss", "sp"),
        ),
        (
            "REDIS+SENTINEL://:secret@s1:1/games",
            SentinelTarget((("s1", 1),), "games", 0, None, "secret"),
        ),
    ],
)
def test_sentinel_urls_name_the_sentinels_the_service_and_the_db(url, target):
    assert is_sentinel_url(url)
    assert parse_sentinel_url(url) == target


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel:///games", "no Sentinel host"),
        ("redis+sentinel://s1:26379", "no service name"),
        ("redis+sentinel://s1:26379/", "no service name"),
        ("redis+sentinel://s1:x/games", "is not a number"),
        ("redis+sentinel://s1:70000/games", "out of range"),
        ("redis+sentinel://s1/games/db", "is not a number"),
        ("redis+sentinel://s1/games/0/extra", "more than"),
        ("redis+sentinel://[::1/games", "unclosed"),
        ("redis+sentinel://s1/games?ssl=1", "unknown option"),
    ],
)
def test_a_malformed_sentinel_url_says_what_is_wrong(url, why):
    with pytest.raises(BadRedisURL, match=why):
        parse_sentinel_url(url)


def test_plain_urls_are_not_sentinel_urls():
    assert not is_sentinel_url("redis://127.0.0.1:6379/0")
    assert not is_sentinel_url("rediss://h:1/0")


def test_passwords_never_reach_the_logs():
    assert redacted("redis+sentinel://u:pw@s1:1,s2:2/games/0?sentinel_password=sp") == (
        "redis+sentinel://u:***@s1:1,s2:2/games/0?sentinel_password=***"
    )
    assert redacted("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redacted("redis+sentinel://s1:1/games") == "redis+sentinel://s1:1/games"


def test_cluster_urls_name_seed_nodes_and_credentials():
    assert is_cluster_url("redis+cluster://n1:7000,n2:7001")
    assert parse_cluster_url("redis+cluster://n1:7000,[::1]:7001,n3") == ClusterTarget(
        (("n1", 7000), ("::1", 7001), ("n3", 6379))
    )
    assert parse_cluster_url("redis+cluster://u:p%3A@n1:7000/0") == ClusterTarget((("n1", 7000),), "u", "p:")
    assert redacted("redis+cluster://u:pw@n1:7000") == "redis+cluster://u:***@n1:7000"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+cluster://", "no node"),
        ("redis+cluster://n1:7000/1", "only database 0"),
        ("redis+cluster://n1:7000/?x=1", "no options"),
        ("redis+cluster://n1:port", "is not a number"),
    ],
)
def test_a_malformed_cluster_url_says_what_is_wrong(url, why):
    with pytest.raises(BadRedisURL, match=why):
        parse_cluster_url(url)
