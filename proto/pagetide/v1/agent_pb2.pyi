from pagetide.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListHostsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("host_ids",)
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTopologyRequest(_message.Message):
    __slots__ = ("host_id",)
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    def __init__(self, host_id: _Optional[str] = ...) -> None: ...

class GetTopologyResponse(_message.Message):
    __slots__ = ("host_id", "nodes", "tenants", "time_ns", "tick_ns", "period_ns", "demotion_enabled", "zonelist_mode", "backend", "incarnation", "tenant_generation")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TICK_NS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    DEMOTION_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ZONELIST_MODE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    TENANT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Node]
    tenants: _containers.RepeatedCompositeFieldContainer[_types_pb2.Tenant]
    time_ns: int
    tick_ns: int
    period_ns: int
    demotion_enabled: bool
    zonelist_mode: _types_pb2.ZonelistMode
    backend: str
    incarnation: str
    tenant_generation: int
    def __init__(self, host_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[_types_pb2.Node, _Mapping]]] = ..., tenants: _Optional[_Iterable[_Union[_types_pb2.Tenant, _Mapping]]] = ..., time_ns: _Optional[int] = ..., tick_ns: _Optional[int] = ..., period_ns: _Optional[int] = ..., demotion_enabled: _Optional[bool] = ..., zonelist_mode: _Optional[_Union[_types_pb2.ZonelistMode, str]] = ..., backend: _Optional[str] = ..., incarnation: _Optional[str] = ..., tenant_generation: _Optional[int] = ...) -> None: ...

class GetHeatReportRequest(_message.Message):
    __slots__ = ("host_id", "max_candidates", "max_hot_fast", "wait_for_period_after", "max_wait_ms")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MAX_HOT_FAST_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_PERIOD_AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    max_candidates: int
    max_hot_fast: int
    wait_for_period_after: int
    max_wait_ms: int
    def __init__(self, host_id: _Optional[str] = ..., max_candidates: _Optional[int] = ..., max_hot_fast: _Optional[int] = ..., wait_for_period_after: _Optional[int] = ..., max_wait_ms: _Optional[int] = ...) -> None: ...

class PageList(_message.Message):
    __slots__ = ("count", "addresses", "heat", "nodes")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    HEAT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    count: int
    addresses: bytes
    heat: bytes
    nodes: bytes
    def __init__(self, count: _Optional[int] = ..., addresses: _Optional[bytes] = ..., heat: _Optional[bytes] = ..., nodes: _Optional[bytes] = ...) -> None: ...

class HeatHistogram(_message.Message):
    __slots__ = ("node", "pages")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    node: int
    pages: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, node: _Optional[int] = ..., pages: _Optional[_Iterable[int]] = ...) -> None: ...

class TenantHeat(_message.Message):
    __slots__ = ("tenant", "page_size_bytes", "histograms", "hot_slow", "cold_fast", "hot_fast", "accessed_page_scans", "window_scans", "lower_tiers")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    HOT_SLOW_FIELD_NUMBER: _ClassVar[int]
    COLD_FAST_FIELD_NUMBER: _ClassVar[int]
    HOT_FAST_FIELD_NUMBER: _ClassVar[int]
    ACCESSED_PAGE_SCANS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SCANS_FIELD_NUMBER: _ClassVar[int]
    LOWER_TIERS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size_bytes: int
    histograms: _containers.RepeatedCompositeFieldContainer[HeatHistogram]
    hot_slow: PageList
    cold_fast: PageList
    hot_fast: PageList
    accessed_page_scans: int
    window_scans: float
    lower_tiers: _containers.RepeatedCompositeFieldContainer[TierCandidates]
    def __init__(self, tenant: _Optional[str] = ..., page_size_bytes: _Optional[int] = ..., histograms: _Optional[_Iterable[_Union[HeatHistogram, _Mapping]]] = ..., hot_slow: _Optional[_Union[PageList, _Mapping]] = ..., cold_fast: _Optional[_Union[PageList, _Mapping]] = ..., hot_fast: _Optional[_Union[PageList, _Mapping]] = ..., accessed_page_scans: _Optional[int] = ..., window_scans: _Optional[float] = ..., lower_tiers: _Optional[_Iterable[_Union[TierCandidates, _Mapping]]] = ...) -> None: ...

class TierCandidates(_message.Message):
    __slots__ = ("memory_tier", "hot_below", "cold", "hot")
    MEMORY_TIER_FIELD_NUMBER: _ClassVar[int]
    HOT_BELOW_FIELD_NUMBER: _ClassVar[int]
    COLD_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    memory_tier: int
    hot_below: PageList
    cold: PageList
    hot: PageList
    def __init__(self, memory_tier: _Optional[int] = ..., hot_below: _Optional[_Union[PageList, _Mapping]] = ..., cold: _Optional[_Union[PageList, _Mapping]] = ..., hot: _Optional[_Union[PageList, _Mapping]] = ...) -> None: ...

class GetHeatReportResponse(_message.Message):
    __slots__ = ("host_id", "period", "nr_scans", "time_ns", "tenants", "node_free_bytes", "vmstat", "waited_out", "incarnation", "tracker", "bin_level", "tenant_generation", "node_utilization", "node_loaded_read_latency_ns")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    NR_SCANS_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    NODE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VMSTAT_FIELD_NUMBER: _ClassVar[int]
    WAITED_OUT_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    TRACKER_FIELD_NUMBER: _ClassVar[int]
    BIN_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TENANT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    NODE_UTILIZATION_FIELD_NUMBER: _ClassVar[int]
    NODE_LOADED_READ_LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    period: int
    nr_scans: int
    time_ns: int
    tenants: _containers.RepeatedCompositeFieldContainer[TenantHeat]
    node_free_bytes: _containers.RepeatedScalarFieldContainer[int]
    vmstat: _types_pb2.Vmstat
    waited_out: bool
    incarnation: str
    tracker: str
    bin_level: _containers.RepeatedScalarFieldContainer[float]
    tenant_generation: int
    node_utilization: _containers.RepeatedScalarFieldContainer[float]
    node_loaded_read_latency_ns: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, host_id: _Optional[str] = ..., period: _Optional[int] = ..., nr_scans: _Optional[int] = ..., time_ns: _Optional[int] = ..., tenants: _Optional[_Iterable[_Union[TenantHeat, _Mapping]]] = ..., node_free_bytes: _Optional[_Iterable[int]] = ..., vmstat: _Optional[_Union[_types_pb2.Vmstat, _Mapping]] = ..., waited_out: _Optional[bool] = ..., incarnation: _Optional[str] = ..., tracker: _Optional[str] = ..., bin_level: _Optional[_Iterable[float]] = ..., tenant_generation: _Optional[int] = ..., node_utilization: _Optional[_Iterable[float]] = ..., node_loaded_read_latency_ns: _Optional[_Iterable[float]] = ...) -> None: ...

class MoveCall(_message.Message):
    __slots__ = ("tenant", "count", "addresses", "nodes", "sw_young", "expected_nodes")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SW_YOUNG_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_NODES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    count: int
    addresses: bytes
    nodes: bytes
    sw_young: bool
    expected_nodes: bytes
    def __init__(self, tenant: _Optional[str] = ..., count: _Optional[int] = ..., addresses: _Optional[bytes] = ..., nodes: _Optional[bytes] = ..., sw_young: _Optional[bool] = ..., expected_nodes: _Optional[bytes] = ...) -> None: ...

class MovePagesRequest(_message.Message):
    __slots__ = ("host_id", "batch_id", "calls")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    batch_id: str
    calls: _containers.RepeatedCompositeFieldContainer[MoveCall]
    def __init__(self, host_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., calls: _Optional[_Iterable[_Union[MoveCall, _Mapping]]] = ...) -> None: ...

class MoveCallResult(_message.Message):
    __slots__ = ("status", "moved_pages", "moved_bytes", "migration_time_ns")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MOVED_PAGES_FIELD_NUMBER: _ClassVar[int]
    MOVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    status: bytes
    moved_pages: int
    moved_bytes: int
    migration_time_ns: int
    def __init__(self, status: _Optional[bytes] = ..., moved_pages: _Optional[int] = ..., moved_bytes: _Optional[int] = ..., migration_time_ns: _Optional[int] = ...) -> None: ...

class MovePagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MoveCallResult]
    def __init__(self, results: _Optional[_Iterable[_Union[MoveCallResult, _Mapping]]] = ...) -> None: ...
