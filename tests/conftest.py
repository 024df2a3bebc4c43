import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """One Ray cluster for every end-to-end test of the session: a head and two worker nodes on this machine
    (ray.cluster_utils.Cluster), so proxies spread over several nodes as on a real cluster."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 96 << 20})
    for _ in range(2):
        cluster.add_node(num_cpus=1, object_store_memory=96 << 20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def child():
    """A child process touching every other page of its CHILD_NPAGES (tests/helpers.py CHILD): (Popen, the
    buffer's address); killed afterwards."""
    import subprocess
    import sys

    from helpers import CHILD

    p = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        yield p, int(p.stdout.readline())
    finally:
        p.kill()
        p.wait(timeout=10)
