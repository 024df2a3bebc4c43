from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_DRAM: _ClassVar[Tier]
    TIER_SLOW: _ClassVar[Tier]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_ROUND: _ClassVar[EventKind]
    EVENT_KIND_POLICY_SET: _ClassVar[EventKind]
    EVENT_KIND_POLICY_DELETED: _ClassVar[EventKind]
    EVENT_KIND_HOST_DOWN: _ClassVar[EventKind]
    EVENT_KIND_HOST_UP: _ClassVar[EventKind]
    EVENT_KIND_MIGRATION_PAUSED: _ClassVar[EventKind]
    EVENT_KIND_MIGRATION_RESUMED: _ClassVar[EventKind]
TIER_UNSPECIFIED: Tier
TIER_DRAM: Tier
TIER_SLOW: Tier
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_ROUND: EventKind
EVENT_KIND_POLICY_SET: EventKind
EVENT_KIND_POLICY_DELETED: EventKind
EVENT_KIND_HOST_DOWN: EventKind
EVENT_KIND_HOST_UP: EventKind
EVENT_KIND_MIGRATION_PAUSED: EventKind
EVENT_KIND_MIGRATION_RESUMED: EventKind

class VmSelector(_message.Message):
    __slots__ = ("host_id", "vm", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class VmPolicy(_message.Message):
    __slots__ = ("host_id", "vm", "min_dram_bytes", "max_dram_bytes", "weight", "min_dram_share", "max_dram_share", "pinned_tier", "migration_disabled", "max_slowdown")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    MIN_DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    PINNED_TIER_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_DISABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    min_dram_bytes: int
    max_dram_bytes: int
    weight: float
    min_dram_share: float
    max_dram_share: float
    pinned_tier: Tier
    migration_disabled: bool
    max_slowdown: float
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., min_dram_bytes: _Optional[int] = ..., max_dram_bytes: _Optional[int] = ..., weight: _Optional[float] = ..., min_dram_share: _Optional[float] = ..., max_dram_share: _Optional[float] = ..., pinned_tier: _Optional[_Union[Tier, str]] = ..., migration_disabled: _Optional[bool] = ..., max_slowdown: _Optional[float] = ...) -> None: ...

class SetVmPolicyRequest(_message.Message):
    __slots__ = ("policy", "selector")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    policy: VmPolicy
    selector: VmSelector
    def __init__(self, policy: _Optional[_Union[VmPolicy, _Mapping]] = ..., selector: _Optional[_Union[VmSelector, _Mapping]] = ...) -> None: ...

class SetVmPolicyResponse(_message.Message):
    __slots__ = ("policy", "policies")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policy: VmPolicy
    policies: _containers.RepeatedCompositeFieldContainer[VmPolicy]
    def __init__(self, policy: _Optional[_Union[VmPolicy, _Mapping]] = ..., policies: _Optional[_Iterable[_Union[VmPolicy, _Mapping]]] = ...) -> None: ...

class GetVmPolicyRequest(_message.Message):
    __slots__ = ("host_id", "vm")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ...) -> None: ...

class GetVmPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: VmPolicy
    def __init__(self, policy: _Optional[_Union[VmPolicy, _Mapping]] = ...) -> None: ...

class ListVmPoliciesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "selector")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    selector: VmSelector
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., selector: _Optional[_Union[VmSelector, _Mapping]] = ...) -> None: ...

class ListVmPoliciesResponse(_message.Message):
    __slots__ = ("policies", "next_page_token")
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[VmPolicy]
    next_page_token: str
    def __init__(self, policies: _Optional[_Iterable[_Union[VmPolicy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host_id", "last_round_ns", "last_report_bytes", "promoted_bytes", "demoted_bytes", "vm_dram_share", "up", "last_period", "rounds", "missed_deadlines", "outages", "migration_paused", "pause_reason", "address", "vms", "dram_capacity_bytes", "slow_capacity_bytes", "last_error")
    class VmDramShareEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ROUND_NS_FIELD_NUMBER: _ClassVar[int]
    LAST_REPORT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    VM_DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    LAST_PERIOD_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    MISSED_DEADLINES_FIELD_NUMBER: _ClassVar[int]
    OUTAGES_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSE_REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    DRAM_CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    SLOW_CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    last_round_ns: int
    last_report_bytes: int
    promoted_bytes: int
    demoted_bytes: int
    vm_dram_share: _containers.ScalarMap[str, float]
    up: bool
    last_period: int
    rounds: int
    missed_deadlines: int
    outages: int
    migration_paused: bool
    pause_reason: str
    address: str
    vms: int
    dram_capacity_bytes: int
    slow_capacity_bytes: int
    last_error: str
    def __init__(self, host_id: _Optional[str] = ..., last_round_ns: _Optional[int] = ..., last_report_bytes: _Optional[int] = ..., promoted_bytes: _Optional[int] = ..., demoted_bytes: _Optional[int] = ..., vm_dram_share: _Optional[_Mapping[str, float]] = ..., up: _Optional[bool] = ..., last_period: _Optional[int] = ..., rounds: _Optional[int] = ..., missed_deadlines: _Optional[int] = ..., outages: _Optional[int] = ..., migration_paused: _Optional[bool] = ..., pause_reason: _Optional[str] = ..., address: _Optional[str] = ..., vms: _Optional[int] = ..., dram_capacity_bytes: _Optional[int] = ..., slow_capacity_bytes: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("rounds", "hosts")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    def __init__(self, rounds: _Optional[int] = ..., hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ...) -> None: ...

class DeleteVmPolicyRequest(_message.Message):
    __slots__ = ("host_id", "vm", "selector")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    selector: VmSelector
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., selector: _Optional[_Union[VmSelector, _Mapping]] = ...) -> None: ...

class DeleteVmPolicyResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedCompositeFieldContainer[VmPolicy]
    def __init__(self, deleted: _Optional[_Iterable[_Union[VmPolicy, _Mapping]]] = ...) -> None: ...

class ListManagedHostsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListManagedHostsResponse(_message.Message):
    __slots__ = ("hosts", "next_page_token", "cluster_paused")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_PAUSED_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    next_page_token: str
    cluster_paused: bool
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., cluster_paused: _Optional[bool] = ...) -> None: ...

class VmStatus(_message.Message):
    __slots__ = ("host_id", "vm", "labels", "footprint_bytes", "page_size_bytes", "resident_bytes", "dram_bytes", "dram_share", "dram_target_bytes", "policy", "policy_set", "host_up", "period")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    DRAM_TARGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    POLICY_SET_FIELD_NUMBER: _ClassVar[int]
    HOST_UP_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    labels: _containers.ScalarMap[str, str]
    footprint_bytes: int
    page_size_bytes: int
    resident_bytes: int
    dram_bytes: int
    dram_share: float
    dram_target_bytes: int
    policy: VmPolicy
    policy_set: bool
    host_up: bool
    period: int
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., footprint_bytes: _Optional[int] = ..., page_size_bytes: _Optional[int] = ..., resident_bytes: _Optional[int] = ..., dram_bytes: _Optional[int] = ..., dram_share: _Optional[float] = ..., dram_target_bytes: _Optional[int] = ..., policy: _Optional[_Union[VmPolicy, _Mapping]] = ..., policy_set: _Optional[bool] = ..., host_up: _Optional[bool] = ..., period: _Optional[int] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("selector", "page_size", "page_token")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    selector: VmSelector
    page_size: int
    page_token: str
    def __init__(self, selector: _Optional[_Union[VmSelector, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms", "next_page_token")
    VMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VmStatus]
    next_page_token: str
    def __init__(self, vms: _Optional[_Iterable[_Union[VmStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetVmHeatRequest(_message.Message):
    __slots__ = ("host_id", "vm")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ...) -> None: ...

class GetVmHeatResponse(_message.Message):
    __slots__ = ("host_id", "vm", "period", "page_size_bytes", "pages", "dram_pages")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    DRAM_PAGES_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    period: int
    page_size_bytes: int
    pages: _containers.RepeatedScalarFieldContainer[int]
    dram_pages: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., period: _Optional[int] = ..., page_size_bytes: _Optional[int] = ..., pages: _Optional[_Iterable[int]] = ..., dram_pages: _Optional[_Iterable[int]] = ...) -> None: ...

class PauseMigrationRequest(_message.Message):
    __slots__ = ("host_id", "reason")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    reason: str
    def __init__(self, host_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PauseMigrationResponse(_message.Message):
    __slots__ = ("cluster_paused", "paused_host_ids")
    CLUSTER_PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    cluster_paused: bool
    paused_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster_paused: _Optional[bool] = ..., paused_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResumeMigrationRequest(_message.Message):
    __slots__ = ("host_id",)
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    def __init__(self, host_id: _Optional[str] = ...) -> None: ...

class ResumeMigrationResponse(_message.Message):
    __slots__ = ("cluster_paused", "paused_host_ids")
    CLUSTER_PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    cluster_paused: bool
    paused_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cluster_paused: _Optional[bool] = ..., paused_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("host_ids", "kinds")
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    host_ids: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[EventKind]
    def __init__(self, host_ids: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[_Union[EventKind, str]]] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("sequence", "time_unix_ns", "kind", "host_id", "vm", "policy", "period", "promoted_bytes", "demoted_bytes", "migration_paused", "reason", "dropped_events")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEMOTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_PAUSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DROPPED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time_unix_ns: int
    kind: EventKind
    host_id: str
    vm: str
    policy: VmPolicy
    period: int
    promoted_bytes: int
    demoted_bytes: int
    migration_paused: bool
    reason: str
    dropped_events: int
    def __init__(self, sequence: _Optional[int] = ..., time_unix_ns: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., host_id: _Optional[str] = ..., vm: _Optional[str] = ..., policy: _Optional[_Union[VmPolicy, _Mapping]] = ..., period: _Optional[int] = ..., promoted_bytes: _Optional[int] = ..., demoted_bytes: _Optional[int] = ..., migration_paused: _Optional[bool] = ..., reason: _Optional[str] = ..., dropped_events: _Optional[int] = ...) -> None: ...

class NewVm(_message.Message):
    __slots__ = ("name", "footprint_bytes", "page_size_bytes", "pages", "like_host_id", "like_vm")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    LIKE_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    LIKE_VM_FIELD_NUMBER: _ClassVar[int]
    name: str
    footprint_bytes: int
    page_size_bytes: int
    pages: _containers.RepeatedScalarFieldContainer[int]
    like_host_id: str
    like_vm: str
    def __init__(self, name: _Optional[str] = ..., footprint_bytes: _Optional[int] = ..., page_size_bytes: _Optional[int] = ..., pages: _Optional[_Iterable[int]] = ..., like_host_id: _Optional[str] = ..., like_vm: _Optional[str] = ...) -> None: ...

class GetFleetAdviceRequest(_message.Message):
    __slots__ = ("max_slowdown", "migration_bandwidth_bytes_per_second", "min_gain", "max_moves", "new_vms", "include_estimates")
    MAX_SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_BANDWIDTH_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MIN_GAIN_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_FIELD_NUMBER: _ClassVar[int]
    NEW_VMS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    max_slowdown: float
    migration_bandwidth_bytes_per_second: float
    min_gain: float
    max_moves: int
    new_vms: _containers.RepeatedCompositeFieldContainer[NewVm]
    include_estimates: bool
    def __init__(self, max_slowdown: _Optional[float] = ..., migration_bandwidth_bytes_per_second: _Optional[float] = ..., min_gain: _Optional[float] = ..., max_moves: _Optional[int] = ..., new_vms: _Optional[_Iterable[_Union[NewVm, _Mapping]]] = ..., include_estimates: _Optional[bool] = ...) -> None: ...

class VmEstimate(_message.Message):
    __slots__ = ("host_id", "dram_bytes", "dram_share", "slowdown", "tier_shares", "refused")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    TIER_SHARES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    dram_bytes: int
    dram_share: float
    slowdown: float
    tier_shares: _containers.RepeatedScalarFieldContainer[float]
    refused: str
    def __init__(self, host_id: _Optional[str] = ..., dram_bytes: _Optional[int] = ..., dram_share: _Optional[float] = ..., slowdown: _Optional[float] = ..., tier_shares: _Optional[_Iterable[float]] = ..., refused: _Optional[str] = ...) -> None: ...

class VmAdvice(_message.Message):
    __slots__ = ("host_id", "vm", "now", "after", "hosts")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    now: VmEstimate
    after: VmEstimate
    hosts: _containers.RepeatedCompositeFieldContainer[VmEstimate]
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., now: _Optional[_Union[VmEstimate, _Mapping]] = ..., after: _Optional[_Union[VmEstimate, _Mapping]] = ..., hosts: _Optional[_Iterable[_Union[VmEstimate, _Mapping]]] = ...) -> None: ...

class FleetMove(_message.Message):
    __slots__ = ("vm", "source_host_id", "destination_host_id", "copy_bytes", "copy_seconds", "gain", "swap_with_host_id", "swap_with_vm")
    VM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    COPY_BYTES_FIELD_NUMBER: _ClassVar[int]
    COPY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GAIN_FIELD_NUMBER: _ClassVar[int]
    SWAP_WITH_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    SWAP_WITH_VM_FIELD_NUMBER: _ClassVar[int]
    vm: str
    source_host_id: str
    destination_host_id: str
    copy_bytes: int
    copy_seconds: float
    gain: float
    swap_with_host_id: str
    swap_with_vm: str
    def __init__(self, vm: _Optional[str] = ..., source_host_id: _Optional[str] = ..., destination_host_id: _Optional[str] = ..., copy_bytes: _Optional[int] = ..., copy_seconds: _Optional[float] = ..., gain: _Optional[float] = ..., swap_with_host_id: _Optional[str] = ..., swap_with_vm: _Optional[str] = ...) -> None: ...

class NewVmPlacement(_message.Message):
    __slots__ = ("vm", "host_id", "reason", "estimate")
    VM_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    vm: str
    host_id: str
    reason: str
    estimate: VmEstimate
    def __init__(self, vm: _Optional[str] = ..., host_id: _Optional[str] = ..., reason: _Optional[str] = ..., estimate: _Optional[_Union[VmEstimate, _Mapping]] = ...) -> None: ...

class GetFleetAdviceResponse(_message.Message):
    __slots__ = ("dram_share_before", "dram_share_after", "moves", "placements", "vms", "move_bytes", "move_seconds", "hosts_left_out")
    DRAM_SHARE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DRAM_SHARE_AFTER_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    MOVE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MOVE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    dram_share_before: float
    dram_share_after: float
    moves: _containers.RepeatedCompositeFieldContainer[FleetMove]
    placements: _containers.RepeatedCompositeFieldContainer[NewVmPlacement]
    vms: _containers.RepeatedCompositeFieldContainer[VmAdvice]
    move_bytes: int
    move_seconds: float
    hosts_left_out: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dram_share_before: _Optional[float] = ..., dram_share_after: _Optional[float] = ..., moves: _Optional[_Iterable[_Union[FleetMove, _Mapping]]] = ..., placements: _Optional[_Iterable[_Union[NewVmPlacement, _Mapping]]] = ..., vms: _Optional[_Iterable[_Union[VmAdvice, _Mapping]]] = ..., move_bytes: _Optional[int] = ..., move_seconds: _Optional[float] = ..., hosts_left_out: _Optional[_Iterable[str]] = ...) -> None: ...
