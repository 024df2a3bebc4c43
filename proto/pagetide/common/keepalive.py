"""HTTP/2 keepalive, the one setting both ends of a pagetide channel must agree on: clients ping every
PING_SECONDS and give up on a peer that does not answer within TIMEOUT_SECONDS (a stalled process -- SIGSTOP,
a hung host -- whose kernel still acknowledges TCP is found in seconds, not at the next call's deadline);
servers accept pings that often, even between calls, instead of answering GOAWAY too_many_pings."""

PING_SECONDS = 2.0
TIMEOUT_SECONDS = 3.0

CLIENT_OPTIONS = [("grpc.keepalive_time_ms", int(PING_SECONDS * 1000)),
                  ("grpc.keepalive_timeout_ms", int(TIMEOUT_SECONDS * 1000)),
                  ("grpc.keepalive_permit_without_calls", 1),
                  ("grpc.http2.max_pings_without_data", 0)]

SERVER_OPTIONS = [("grpc.http2.min_recv_ping_interval_without_data_ms", int(PING_SECONDS * 1000) // 2),
                  ("grpc.http2.min_ping_interval_without_data_ms", int(PING_SECONDS * 1000) // 2),
                  ("grpc.keepalive_permit_without_calls", 1),
                  ("grpc.http2.max_ping_strikes", 0)]
