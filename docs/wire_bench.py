"""Encode/decode cost of one full MovePagesRequest (64 calls x 1,024 pages) and its response with the API found
under the directory given as argv[1] (e.g. proto/ of a checkout): repeated fields or packed arrays, whichever
it has. BENCHMARKS.md records both."""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1]); 
from pagetide.v1 import agent_pb2
rng = np.random.default_rng(1)
addrs = [np.sort(rng.choice(1<<20, 1024, replace=False)).astype(np.uint64) * 4096 for _ in range(64)]
packed = hasattr(agent_pb2.MoveCall(), "count")
def build():
    if packed:
        return agent_pb2.MovePagesRequest(host_id="h", batch_id="b", calls=[agent_pb2.MoveCall(tenant="vm", count=a.size, addresses=a.astype("<u8").tobytes(), nodes=np.full(a.size, 1, "<i2").tobytes()) for a in addrs])
    return agent_pb2.MovePagesRequest(host_id="h", batch_id="b", calls=[agent_pb2.MoveCall(tenant="vm", addresses=a.tolist(), nodes=[1]*a.size) for a in addrs])
def parse(b):
    r = agent_pb2.MovePagesRequest.FromString(b)
    if packed:
        return [(np.frombuffer(c.addresses, "<u8"), np.frombuffer(c.nodes, "<i2")) for c in r.calls]
    return [(np.array(c.addresses, dtype=np.uint64), np.array(c.nodes, dtype=np.int64)) for c in r.calls]
def status():
    st = np.full(1024, 1, np.int16)
    if packed:
        resp = agent_pb2.MovePagesResponse(results=[agent_pb2.MoveCallResult(status=st.astype("<i2").tobytes()) for _ in range(64)])
        b = resp.SerializeToString(); r = agent_pb2.MovePagesResponse.FromString(b)
        return b, [np.frombuffer(x.status, "<i2") for x in r.results]
    resp = agent_pb2.MovePagesResponse(results=[agent_pb2.MoveCallResult(status=st.tolist()) for _ in range(64)])
    b = resp.SerializeToString(); r = agent_pb2.MovePagesResponse.FromString(b)
    return b, [np.array(x.status, dtype=np.int32) for x in r.results]
N=30
t=time.perf_counter()
for _ in range(N): b = build().SerializeToString()
t1=time.perf_counter()
for _ in range(N): parse(b)
t2=time.perf_counter()
for _ in range(N): sb,_ = status()
t3=time.perf_counter()
print(f"{'packed bytes' if packed else 'repeated'}: request {len(b)} B, build+serialize {1e3*(t1-t)/N:.2f} ms, parse+arrays {1e3*(t2-t1)/N:.2f} ms; response {len(sb)} B, round trip {1e3*(t3-t2)/N:.2f} ms (64 calls x 1024 pages)")
