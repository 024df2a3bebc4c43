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
    __slots__ = ("host_id", "nodes", "tenants", "time_ns", "tick_ns", "period_ns", "demotion_enabled", "zonelist_mode")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TICK_NS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_NS_FIELD_NUMBER: _ClassVar[int]
    DEMOTION_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ZONELIST_MODE_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Node]
    tenants: _containers.RepeatedCompositeFieldContainer[_types_pb2.Tenant]
    time_ns: int
    tick_ns: int
    period_ns: int
    demotion_enabled: bool
    zonelist_mode: _types_pb2.ZonelistMode
    def __init__(self, host_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[_types_pb2.Node, _Mapping]]] = ..., tenants: _Optional[_Iterable[_Union[_types_pb2.Tenant, _Mapping]]] = ..., time_ns: _Optional[int] = ..., tick_ns: _Optional[int] = ..., period_ns: _Optional[int] = ..., demotion_enabled: _Optional[bool] = ..., zonelist_mode: _Optional[_Union[_types_pb2.ZonelistMode, str]] = ...) -> None: ...

class GetHeatReportRequest(_message.Message):
    __slots__ = ("host_id", "max_candidates", "max_hot_fast")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MAX_HOT_FAST_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    max_candidates: int
    max_hot_fast: int
    def __init__(self, host_id: _Optional[str] = ..., max_candidates: _Optional[int] = ..., max_hot_fast: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("tenant", "page_size_bytes", "histograms", "hot_slow", "cold_fast", "hot_fast", "accessed_page_scans")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    HOT_SLOW_FIELD_NUMBER: _ClassVar[int]
    COLD_FAST_FIELD_NUMBER: _ClassVar[int]
    HOT_FAST_FIELD_NUMBER: _ClassVar[int]
    ACCESSED_PAGE_SCANS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size_bytes: int
    histograms: _containers.RepeatedCompositeFieldContainer[HeatHistogram]
    hot_slow: PageList
    cold_fast: PageList
    hot_fast: PageList
    accessed_page_scans: int
    def __init__(self, tenant: _Optional[str] = ..., page_size_bytes: _Optional[int] = ..., histograms: _Optional[_Iterable[_Union[HeatHistogram, _Mapping]]] = ..., hot_slow: _Optional[_Union[PageList, _Mapping]] = ..., cold_fast: _Optional[_Union[PageList, _Mapping]] = ..., hot_fast: _Optional[_Union[PageList, _Mapping]] = ..., accessed_page_scans: _Optional[int] = ...) -> None: ...

class GetHeatReportResponse(_message.Message):
    __slots__ = ("host_id", "period", "nr_scans", "time_ns", "tenants", "node_free_bytes", "vmstat")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    NR_SCANS_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    NODE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VMSTAT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    period: int
    nr_scans: int
    time_ns: int
    tenants: _containers.RepeatedCompositeFieldContainer[TenantHeat]
    node_free_bytes: _containers.RepeatedScalarFieldContainer[int]
    vmstat: _types_pb2.Vmstat
    def __init__(self, host_id: _Optional[str] = ..., period: _Optional[int] = ..., nr_scans: _Optional[int] = ..., time_ns: _Optional[int] = ..., tenants: _Optional[_Iterable[_Union[TenantHeat, _Mapping]]] = ..., node_free_bytes: _Optional[_Iterable[int]] = ..., vmstat: _Optional[_Union[_types_pb2.Vmstat, _Mapping]] = ...) -> None: ...

class MoveCall(_message.Message):
    __slots__ = ("tenant", "addresses", "nodes", "sw_young")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SW_YOUNG_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    addresses: _containers.RepeatedScalarFieldContainer[int]
    nodes: _containers.RepeatedScalarFieldContainer[int]
    sw_young: bool
    def __init__(self, tenant: _Optional[str] = ..., addresses: _Optional[_Iterable[int]] = ..., nodes: _Optional[_Iterable[int]] = ..., sw_young: _Optional[bool] = ...) -> None: ...

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
    status: _containers.RepeatedScalarFieldContainer[int]
    moved_pages: int
    moved_bytes: int
    migration_time_ns: int
    def __init__(self, status: _Optional[_Iterable[int]] = ..., moved_pages: _Optional[int] = ..., moved_bytes: _Optional[int] = ..., migration_time_ns: _Optional[int] = ...) -> None: ...

class MovePagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[MoveCallResult]
    def __init__(self, results: _Optional[_Iterable[_Union[MoveCallResult, _Mapping]]] = ...) -> None: ...

class AdvanceClockRequest(_message.Message):
    __slots__ = ("host_id", "ticks")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TICKS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    ticks: int
    def __init__(self, host_id: _Optional[str] = ..., ticks: _Optional[int] = ...) -> None: ...

class AdvanceClockResponse(_message.Message):
    __slots__ = ("time_ns", "period", "wall_time_ns", "ticks_run")
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TICKS_RUN_FIELD_NUMBER: _ClassVar[int]
    time_ns: int
    period: int
    wall_time_ns: int
    ticks_run: int
    def __init__(self, time_ns: _Optional[int] = ..., period: _Optional[int] = ..., wall_time_ns: _Optional[int] = ..., ticks_run: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("host_id",)
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    def __init__(self, host_id: _Optional[str] = ...) -> None: ...

class TenantStats(_message.Message):
    __slots__ = ("tenant", "workload", "footprint_bytes", "accesses", "dram_share", "oracle_share", "static_oracle_share", "amat_ns", "slowdown", "oracle_slowdown", "migrated_bytes", "pingpong", "resident_bytes", "dram_share_series", "oracle_share_series", "node_reads", "node_writes", "promoted_bytes", "demoted_bytes")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACCESSES_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    STATIC_ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    AMAT_NS_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    MIGRATED_BYTES_FIELD_NUMBER: _ClassVar[int]
    PINGPONG_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_SERIES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SHARE_SERIES_FIELD_NUMBER: _ClassVar[int]
    NODE_READS_FIELD_NUMBER: _ClassVar[int]
    NODE_WRITES_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    workload: str
    footprint_bytes: int
    accesses: float
    dram_share: float
    oracle_share: float
    static_oracle_share: float
    amat_ns: float
    slowdown: float
    oracle_slowdown: float
    migrated_bytes: int
    pingpong: int
    resident_bytes: _containers.RepeatedScalarFieldContainer[int]
    dram_share_series: _containers.RepeatedScalarFieldContainer[float]
    oracle_share_series: _containers.RepeatedScalarFieldContainer[float]
    node_reads: _containers.RepeatedScalarFieldContainer[float]
    node_writes: _containers.RepeatedScalarFieldContainer[float]
    promoted_bytes: int
    demoted_bytes: int
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., footprint_bytes: _Optional[int] = ..., accesses: _Optional[float] = ..., dram_share: _Optional[float] = ..., oracle_share: _Optional[float] = ..., static_oracle_share: _Optional[float] = ..., amat_ns: _Optional[float] = ..., slowdown: _Optional[float] = ..., oracle_slowdown: _Optional[float] = ..., migrated_bytes: _Optional[int] = ..., pingpong: _Optional[int] = ..., resident_bytes: _Optional[_Iterable[int]] = ..., dram_share_series: _Optional[_Iterable[float]] = ..., oracle_share_series: _Optional[_Iterable[float]] = ..., node_reads: _Optional[_Iterable[float]] = ..., node_writes: _Optional[_Iterable[float]] = ..., promoted_bytes: _Optional[int] = ..., demoted_bytes: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("host_id", "time_ns", "tenants", "vmstat", "dram_share", "oracle_share", "slowdown", "node_used_bytes", "node_free_bytes")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    VMSTAT_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    NODE_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    NODE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    time_ns: int
    tenants: _containers.RepeatedCompositeFieldContainer[TenantStats]
    vmstat: _types_pb2.Vmstat
    dram_share: float
    oracle_share: float
    slowdown: float
    node_used_bytes: _containers.RepeatedScalarFieldContainer[int]
    node_free_bytes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, host_id: _Optional[str] = ..., time_ns: _Optional[int] = ..., tenants: _Optional[_Iterable[_Union[TenantStats, _Mapping]]] = ..., vmstat: _Optional[_Union[_types_pb2.Vmstat, _Mapping]] = ..., dram_share: _Optional[float] = ..., oracle_share: _Optional[float] = ..., slowdown: _Optional[float] = ..., node_used_bytes: _Optional[_Iterable[int]] = ..., node_free_bytes: _Optional[_Iterable[int]] = ...) -> None: ...
