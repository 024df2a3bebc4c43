from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_TYPE_UNSPECIFIED: _ClassVar[NodeType]
    NODE_TYPE_DRAM: _ClassVar[NodeType]
    NODE_TYPE_PMEM: _ClassVar[NodeType]
    NODE_TYPE_CXL: _ClassVar[NodeType]

class TenantKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_KIND_UNSPECIFIED: _ClassVar[TenantKind]
    TENANT_KIND_VM: _ClassVar[TenantKind]
    TENANT_KIND_TASK: _ClassVar[TenantKind]

class ZonelistMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ZONELIST_MODE_UNSPECIFIED: _ClassVar[ZonelistMode]
    ZONELIST_MODE_SEPARATE: _ClassVar[ZonelistMode]
    ZONELIST_MODE_UNIFIED: _ClassVar[ZonelistMode]
NODE_TYPE_UNSPECIFIED: NodeType
NODE_TYPE_DRAM: NodeType
NODE_TYPE_PMEM: NodeType
NODE_TYPE_CXL: NodeType
TENANT_KIND_UNSPECIFIED: TenantKind
TENANT_KIND_VM: TenantKind
TENANT_KIND_TASK: TenantKind
ZONELIST_MODE_UNSPECIFIED: ZonelistMode
ZONELIST_MODE_SEPARATE: ZonelistMode
ZONELIST_MODE_UNIFIED: ZonelistMode

class Node(_message.Message):
    __slots__ = ("id", "type", "capacity_bytes", "free_bytes", "used_bytes", "page_table_bytes", "read_latency_ns", "write_latency_ns", "read_bandwidth_bytes_per_second", "write_bandwidth_bytes_per_second", "peer_node", "distances", "wmark_min_bytes", "wmark_low_bytes", "wmark_high_bytes", "demote_margin_bytes", "memory_tier", "demotion_node")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGE_TABLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    READ_LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    WRITE_LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    READ_BANDWIDTH_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    WRITE_BANDWIDTH_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    PEER_NODE_FIELD_NUMBER: _ClassVar[int]
    DISTANCES_FIELD_NUMBER: _ClassVar[int]
    WMARK_MIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    WMARK_LOW_BYTES_FIELD_NUMBER: _ClassVar[int]
    WMARK_HIGH_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEMOTE_MARGIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TIER_FIELD_NUMBER: _ClassVar[int]
    DEMOTION_NODE_FIELD_NUMBER: _ClassVar[int]
    id: int
    type: NodeType
    capacity_bytes: int
    free_bytes: int
    used_bytes: int
    page_table_bytes: int
    read_latency_ns: float
    write_latency_ns: float
    read_bandwidth_bytes_per_second: float
    write_bandwidth_bytes_per_second: float
    peer_node: int
    distances: _containers.RepeatedScalarFieldContainer[int]
    wmark_min_bytes: int
    wmark_low_bytes: int
    wmark_high_bytes: int
    demote_margin_bytes: int
    memory_tier: int
    demotion_node: int
    def __init__(self, id: _Optional[int] = ..., type: _Optional[_Union[NodeType, str]] = ..., capacity_bytes: _Optional[int] = ..., free_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., page_table_bytes: _Optional[int] = ..., read_latency_ns: _Optional[float] = ..., write_latency_ns: _Optional[float] = ..., read_bandwidth_bytes_per_second: _Optional[float] = ..., write_bandwidth_bytes_per_second: _Optional[float] = ..., peer_node: _Optional[int] = ..., distances: _Optional[_Iterable[int]] = ..., wmark_min_bytes: _Optional[int] = ..., wmark_low_bytes: _Optional[int] = ..., wmark_high_bytes: _Optional[int] = ..., demote_margin_bytes: _Optional[int] = ..., memory_tier: _Optional[int] = ..., demotion_node: _Optional[int] = ...) -> None: ...

class Tenant(_message.Message):
    __slots__ = ("name", "kind", "page_size_bytes", "footprint_bytes", "home_node", "address_start", "address_end", "scan_ranges", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    HOME_NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_START_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_END_FIELD_NUMBER: _ClassVar[int]
    SCAN_RANGES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TenantKind
    page_size_bytes: int
    footprint_bytes: int
    home_node: int
    address_start: int
    address_end: int
    scan_ranges: _containers.RepeatedCompositeFieldContainer[AddressRange]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TenantKind, str]] = ..., page_size_bytes: _Optional[int] = ..., footprint_bytes: _Optional[int] = ..., home_node: _Optional[int] = ..., address_start: _Optional[int] = ..., address_end: _Optional[int] = ..., scan_ranges: _Optional[_Iterable[_Union[AddressRange, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AddressRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Vmstat(_message.Message):
    __slots__ = ("pgdemote_kswapd", "pgdemote_direct", "pgpromote_success", "pgmigrate_success", "pgmigrate_fail", "pswpout", "pswpin", "pgalloc_fail", "pgfault", "pgmajfault")
    PGDEMOTE_KSWAPD_FIELD_NUMBER: _ClassVar[int]
    PGDEMOTE_DIRECT_FIELD_NUMBER: _ClassVar[int]
    PGPROMOTE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PGMIGRATE_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PGMIGRATE_FAIL_FIELD_NUMBER: _ClassVar[int]
    PSWPOUT_FIELD_NUMBER: _ClassVar[int]
    PSWPIN_FIELD_NUMBER: _ClassVar[int]
    PGALLOC_FAIL_FIELD_NUMBER: _ClassVar[int]
    PGFAULT_FIELD_NUMBER: _ClassVar[int]
    PGMAJFAULT_FIELD_NUMBER: _ClassVar[int]
    pgdemote_kswapd: int
    pgdemote_direct: int
    pgpromote_success: int
    pgmigrate_success: int
    pgmigrate_fail: int
    pswpout: int
    pswpin: int
    pgalloc_fail: int
    pgfault: int
    pgmajfault: int
    def __init__(self, pgdemote_kswapd: _Optional[int] = ..., pgdemote_direct: _Optional[int] = ..., pgpromote_success: _Optional[int] = ..., pgmigrate_success: _Optional[int] = ..., pgmigrate_fail: _Optional[int] = ..., pswpout: _Optional[int] = ..., pswpin: _Optional[int] = ..., pgalloc_fail: _Optional[int] = ..., pgfault: _Optional[int] = ..., pgmajfault: _Optional[int] = ...) -> None: ...
