"""The services the production set-up relies on, exercised for real."""

import pytest
from django.db import connection

pytestmark = pytest.mark.services


def test_the_suite_runs_on_postgresql_when_database_url_names_it(db):
    if connection.vendor != "postgresql":
        pytest.skip("DATABASE_URL does not point at PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("show server_version")
        assert int(cursor.fetchone()[0].split(".")[0]) >= 13


def test_a_task_goes_through_redis_to_a_worker_and_back(real_worker):
    from flexadmin.celery import ping_task

    result = ping_task.delay()
    assert result.get(timeout=30) == "pong"
    assert result.status == "SUCCESS"


def test_the_cache_is_redis_when_redis_url_is_set(redis_url):
    import redis
    from django.core.cache import caches

    cache = caches["default"]
    assert type(cache).__name__ == "RedisCache"
    cache.set("flexadmin-test-key", "value", 30)
    # Read it back with a plain client: the value really is in Redis, not in this process.
    assert redis.Redis.from_url(redis_url).exists(cache.make_and_validate_key("flexadmin-test-key"))
    assert cache.get("flexadmin-test-key") == "value"
