"""The Ray the controller runs on: an existing cluster (`--ray-address`) or a local instance started here."""

from __future__ import annotations

import os


def init_ray(address: str | None = None, num_cpus: int = 2, object_store_mb: int = 256) -> None:
    """Join the cluster at `address` ("auto", "ray://...", "host:port"), or start a local Ray of this process's
    own with `num_cpus` CPUs -- never silently joining another cluster running on the machine (RAY_ADDRESS or
    a `ray start` head are used only when named). A no-op if this process is already connected."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_mb << 20,
                 log_to_driver=False, configure_logging=False)
