from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VmPolicy(_message.Message):
    __slots__ = ("host_id", "vm", "min_dram_bytes", "max_dram_bytes", "weight")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    VM_FIELD_NUMBER: _ClassVar[int]
    MIN_DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    vm: str
    min_dram_bytes: int
    max_dram_bytes: int
    weight: float
    def __init__(self, host_id: _Optional[str] = ..., vm: _Optional[str] = ..., min_dram_bytes: _Optional[int] = ..., max_dram_bytes: _Optional[int] = ..., weight: _Optional[float] = ...) -> None: ...

class SetVmPolicyRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: VmPolicy
    def __init__(self, policy: _Optional[_Union[VmPolicy, _Mapping]] = ...) -> None: ...

class SetVmPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: VmPolicy
    def __init__(self, policy: _Optional[_Union[VmPolicy, _Mapping]] = ...) -> None: ...

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
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVmPoliciesResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[VmPolicy]
    def __init__(self, policies: _Optional[_Iterable[_Union[VmPolicy, _Mapping]]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host_id", "last_round_ns", "last_report_bytes", "promoted_bytes", "demoted_bytes", "vm_dram_share", "up", "last_period", "rounds", "missed_deadlines", "outages")
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
    def __init__(self, host_id: _Optional[str] = ..., last_round_ns: _Optional[int] = ..., last_report_bytes: _Optional[int] = ..., promoted_bytes: _Optional[int] = ..., demoted_bytes: _Optional[int] = ..., vm_dram_share: _Optional[_Mapping[str, float]] = ..., up: _Optional[bool] = ..., last_period: _Optional[int] = ..., rounds: _Optional[int] = ..., missed_deadlines: _Optional[int] = ..., outages: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("rounds", "hosts")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    def __init__(self, rounds: _Optional[int] = ..., hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ...) -> None: ...
