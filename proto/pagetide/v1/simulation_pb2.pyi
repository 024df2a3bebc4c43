from pagetide.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Workload(_message.Message):
    __slots__ = ("type", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    type: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddTenantRequest(_message.Message):
    __slots__ = ("host_id", "name", "kind", "footprint_bytes", "page_size_bytes", "home_node", "workload", "prefault", "pinned_share", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HOME_NODE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PREFAULT_FIELD_NUMBER: _ClassVar[int]
    PINNED_SHARE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    name: str
    kind: _types_pb2.TenantKind
    footprint_bytes: int
    page_size_bytes: int
    home_node: int
    workload: Workload
    prefault: bool
    pinned_share: float
    labels: _containers.ScalarMap[str, str]
    def __init__(self, host_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[_types_pb2.TenantKind, str]] = ..., footprint_bytes: _Optional[int] = ..., page_size_bytes: _Optional[int] = ..., home_node: _Optional[int] = ..., workload: _Optional[_Union[Workload, _Mapping]] = ..., prefault: _Optional[bool] = ..., pinned_share: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddTenantResponse(_message.Message):
    __slots__ = ("tenant", "tenant_generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TENANT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: _types_pb2.Tenant
    tenant_generation: int
    def __init__(self, tenant: _Optional[_Union[_types_pb2.Tenant, _Mapping]] = ..., tenant_generation: _Optional[int] = ...) -> None: ...

class RemoveTenantRequest(_message.Message):
    __slots__ = ("host_id", "tenant")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    tenant: str
    def __init__(self, host_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class RemoveTenantResponse(_message.Message):
    __slots__ = ("tenant_generation",)
    TENANT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant_generation: int
    def __init__(self, tenant_generation: _Optional[int] = ...) -> None: ...

class ResizeTenantRequest(_message.Message):
    __slots__ = ("host_id", "tenant", "footprint_bytes")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    tenant: str
    footprint_bytes: int
    def __init__(self, host_id: _Optional[str] = ..., tenant: _Optional[str] = ..., footprint_bytes: _Optional[int] = ...) -> None: ...

class ResizeTenantResponse(_message.Message):
    __slots__ = ("tenant", "tenant_generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TENANT_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: _types_pb2.Tenant
    tenant_generation: int
    def __init__(self, tenant: _Optional[_Union[_types_pb2.Tenant, _Mapping]] = ..., tenant_generation: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("tenant", "workload", "footprint_bytes", "accesses", "dram_share", "oracle_share", "static_oracle_share", "amat_ns", "slowdown", "oracle_slowdown", "migrated_bytes", "pingpong", "resident_bytes", "dram_share_series", "oracle_share_series", "node_reads", "node_writes", "promoted_bytes", "demoted_bytes", "lag_oracle_share", "lag_oracle_slowdown", "lag_cost_slowdown", "labels", "first_epoch", "arrived_time_ns", "departed", "departed_time_ns", "tier_shares", "oracle_tier_shares", "lag_oracle_tier_shares")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
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
    LAG_ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    LAG_ORACLE_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    LAG_COST_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FIRST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    DEPARTED_FIELD_NUMBER: _ClassVar[int]
    DEPARTED_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    LAG_ORACLE_TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
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
    lag_oracle_share: float
    lag_oracle_slowdown: float
    lag_cost_slowdown: float
    labels: _containers.ScalarMap[str, str]
    first_epoch: int
    arrived_time_ns: int
    departed: bool
    departed_time_ns: int
    tier_shares: _containers.RepeatedScalarFieldContainer[float]
    oracle_tier_shares: _containers.RepeatedScalarFieldContainer[float]
    lag_oracle_tier_shares: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, tenant: _Optional[str] = ..., workload: _Optional[str] = ..., footprint_bytes: _Optional[int] = ..., accesses: _Optional[float] = ..., dram_share: _Optional[float] = ..., oracle_share: _Optional[float] = ..., static_oracle_share: _Optional[float] = ..., amat_ns: _Optional[float] = ..., slowdown: _Optional[float] = ..., oracle_slowdown: _Optional[float] = ..., migrated_bytes: _Optional[int] = ..., pingpong: _Optional[int] = ..., resident_bytes: _Optional[_Iterable[int]] = ..., dram_share_series: _Optional[_Iterable[float]] = ..., oracle_share_series: _Optional[_Iterable[float]] = ..., node_reads: _Optional[_Iterable[float]] = ..., node_writes: _Optional[_Iterable[float]] = ..., promoted_bytes: _Optional[int] = ..., demoted_bytes: _Optional[int] = ..., lag_oracle_share: _Optional[float] = ..., lag_oracle_slowdown: _Optional[float] = ..., lag_cost_slowdown: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ..., first_epoch: _Optional[int] = ..., arrived_time_ns: _Optional[int] = ..., departed: _Optional[bool] = ..., departed_time_ns: _Optional[int] = ..., tier_shares: _Optional[_Iterable[float]] = ..., oracle_tier_shares: _Optional[_Iterable[float]] = ..., lag_oracle_tier_shares: _Optional[_Iterable[float]] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("host_id", "time_ns", "tenants", "vmstat", "dram_share", "oracle_share", "slowdown", "node_used_bytes", "node_free_bytes", "invariant_error", "lag_oracle_share", "lag_cost_slowdown", "tier_shares", "oracle_tier_shares", "lag_oracle_tier_shares")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    VMSTAT_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    NODE_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    NODE_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INVARIANT_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAG_ORACLE_SHARE_FIELD_NUMBER: _ClassVar[int]
    LAG_COST_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    ORACLE_TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    LAG_ORACLE_TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    time_ns: int
    tenants: _containers.RepeatedCompositeFieldContainer[TenantStats]
    vmstat: _types_pb2.Vmstat
    dram_share: float
    oracle_share: float
    slowdown: float
    node_used_bytes: _containers.RepeatedScalarFieldContainer[int]
    node_free_bytes: _containers.RepeatedScalarFieldContainer[int]
    invariant_error: str
    lag_oracle_share: float
    lag_cost_slowdown: float
    tier_shares: _containers.RepeatedScalarFieldContainer[float]
    oracle_tier_shares: _containers.RepeatedScalarFieldContainer[float]
    lag_oracle_tier_shares: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, host_id: _Optional[str] = ..., time_ns: _Optional[int] = ..., tenants: _Optional[_Iterable[_Union[TenantStats, _Mapping]]] = ..., vmstat: _Optional[_Union[_types_pb2.Vmstat, _Mapping]] = ..., dram_share: _Optional[float] = ..., oracle_share: _Optional[float] = ..., slowdown: _Optional[float] = ..., node_used_bytes: _Optional[_Iterable[int]] = ..., node_free_bytes: _Optional[_Iterable[int]] = ..., invariant_error: _Optional[str] = ..., lag_oracle_share: _Optional[float] = ..., lag_cost_slowdown: _Optional[float] = ..., tier_shares: _Optional[_Iterable[float]] = ..., oracle_tier_shares: _Optional[_Iterable[float]] = ..., lag_oracle_tier_shares: _Optional[_Iterable[float]] = ...) -> None: ...
