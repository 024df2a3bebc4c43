"""Wire limits of the API, one number each, so the agent that enforces a limit and the controller that keeps
within it cannot disagree. The .proto comments state the same numbers; tests/test_proto.py checks them."""

MAX_MOVE_BYTES = 4 << 20       # one move_pages call moves at most 4 MiB (the seed daemon's batch size)
MAX_CALLS = 64                 # move_pages calls per MovePages request (256 MiB of 4 KiB pages)
MAX_CANDIDATES = 16384         # pages per candidate list of a heat report
CANDIDATE_BYTES = 3 * 11       # a tenant's three candidate lists cost 8 + 1 + 2 bytes per page each
REPORT_BUDGET = 768 << 10      # bytes a controller lets one heat report take (under protobuf's 1 MB advice)
MAX_TICKS = 10_000             # ticks one AdvanceClock call may run, and at most
MAX_PAGE_TICKS = 1 << 30       # ticks x the host's pages in one call (~35 s of CPU at 34 ns per page-tick)
MAX_QUEUED = 16                # calls waiting for one host at once; more get RESOURCE_EXHAUSTED
MAX_WAIT_SECONDS = 60.0        # longest long-poll of GetHeatReport (wait_for_period_after)
