import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for every end-to-end test of the session."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 << 20, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()
