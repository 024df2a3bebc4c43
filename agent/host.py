"""The simulated tiered-memory host: NUMA nodes, tenants' pages, allocation, kernel reclaim with demotion,
and move_pages().

State is a structure of arrays with one entry per tenant page (a 4 KiB PTE page or a 2 MiB THP), each
tenant owning a contiguous slice:

    node      int8    the NUMA node the page is on, or NODE_NONE (never faulted) / NODE_SWAP (swapped out)
    flags     uint8   hardware A/D bits, PG_referenced, PG_active, TLB and pin state (see pageflags)
    lru_seq   uint32  position on its node's LRU list: larger = inserted (or rotated) more recently

That is 6 bytes per page (and, while reclaim uses it, the LRU log's 4-5: see "LRU" below); the agent's
scanner adds its own per-page refs/heat. Capacity is counted in 4 KiB base pages per node (`node_used` for
tenant memory, `node_pgtable` for page tables, always on DRAM).

Kernel behaviour follows the 2018 PMEM-NUMA RFC and Linux 5.15 (DESIGN.md sections 1 and 2):
- separate zonelists: ordinary allocations fall back DRAM -> DRAM by distance and never land on a slow node
  (`zonelist: unified` models stock Linux, where a CPU-less slow node is in the fallback list);
- first the low watermark on every zonelist node, then kswapd is woken and the min watermark is tried, then
  direct reclaim on the home node;
- reclaim ages the anonymous active/inactive LRU even without swap; an inactive page is reclaimed from the
  tail unless it was referenced: a set Accessed bit activates it if PG_referenced was already set, or sets
  PG_referenced and rotates it (kernel page_check_references). Where pagetide differs from the kernel: an
  anonymous page whose only sign of use is PG_referenced (as MPOL_MF_SW_YOUNG leaves it) also gets one
  rotation instead of being reclaimed -- this is the second chance the RFC's SW_YOUNG flag is for;
- a reclaimed anonymous page is migrated to its node's demotion target (demotion) when demotion_enabled
  and the target has room above its min watermark; otherwise it is swapped out, and if swap is full it goes
  back on the LRU. Nodes sit in memory tiers (Linux 5.15+ memory tiers, ranked by abstract distance:
  scenario.NodeSpec.tier): a node's demotion target is its peer in the next lower tier (a DRAM node's peer
  slow node), so reclaim demotes DRAM -> CXL -> PMEM, tier by tier, and kswapd runs the top tier first;
  the lowest tier swaps. A migration to a higher tier is a promotion, to a lower one a demotion;
- TPP's decoupled WMARK_DEMOTE: kswapd on a DRAM node wakes below low + demote_scale_factor and reclaims up
  to high + demote_scale_factor;
- promotion is the scenario's kernel tiering mode (`tiering`: none, NUMA-balancing tiering, TPP, DAMOS), called
  after every tenant's accesses and at the end of every tick; in a tiering mode kswapd balances nodes to
  WMARK_PROMO (high + the high - low gap, Linux 6.1) instead of high.

Costs: an access pays its node's loaded latency (idle latency x `bandwidth.latency_factor` of the bandwidth
the node served in the last tick: accesses and migration copies); a migration pays its copy at the slower
side's bandwidth, slowed as that node's accesses are, plus `migration_overhead` (unmap + TLB shootdown) per
page; page tables take DRAM (`node_pgtable`) as the pages they map are faulted in.

A tiering mode reads the page arrays, the watermarks and `free_pages`, and acts only through the public
operations named after the kernel functions they model: `migrate_misplaced_folio` (hint-fault promotion),
`migrate_pages` (the core of every migration), `folio_activate`, `flush_tlb_pages` and `wakeup_kswapd`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

import numpy as np

from pagetide.agent.bandwidth import NodeLoad
from pagetide.agent.idle_pages import Vma
from pagetide.agent.pageflags import (
    HPAGE_PMD_NR, NODE_NONE, NODE_SWAP, PAGE_SIZE, PG_ACCESSED, PG_ACTIVE, PG_DIRTY, PG_LAST_DEMOTE,
    PG_LAST_PROMOTE, PG_PINNED, PG_REFERENCED, PG_TLB_CACHED, pages_per_node,
)
from pagetide.agent.scenario import Scenario, TenantSpec
from pagetide.agent.tiering import make_tiering
from pagetide.agent.workloads import Workload, make_workload

# move_pages(2) flags (agent/mempolicy.py: include/uapi/linux/mempolicy.h and the RFC's SW_YOUNG)
from pagetide.agent.mempolicy import MOVE_PAGES_FLAGS, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, MPOL_MF_SW_YOUNG  # noqa: E402

SWAP_CLUSTER_MAX = 32          # pages reclaim tries to free at once (mm/vmscan.c)
RECLAIM_ROUNDS = 8             # scan rounds per shrink_node call before giving up (the priority loop)
DEF_PRIORITY = 12             # the first round may scan 1/4096 of the list
LRU_SEQ_LIMIT = (1 << 32) - (1 << 26)
ALWAYS_KEPT = PG_PINNED | PG_LAST_PROMOTE | PG_LAST_DEMOTE
assert PG_ACCESSED == 1, "Host.access sets the Accessed bit as bit 0 of the flags"

VMSTAT_COUNTERS = ("pgdemote_kswapd", "pgdemote_direct", "pgpromote_success", "pgmigrate_success",
                   "pgmigrate_fail", "pswpout", "pswpin", "pgalloc_fail", "pgfault", "pgmajfault",
                   "pgpromote_candidate", "numa_pte_updates", "numa_hint_faults", "pgsteal_kswapd",
                   "pgsteal_direct")


@dataclass
class TenantStats:
    """What happened to one tenant, in real accesses and seconds of modelled stall."""
    nr_nodes: int
    reads: np.ndarray = None          # accesses served per node
    writes: np.ndarray = None
    access_time: float = 0.0          # seconds of memory access latency actually paid
    dram_time: float = 0.0            # the same accesses, all served by the home DRAM node
    slow_time: float = 0.0            # the same accesses, all served by the slow tier
    migration_time: float = 0.0       # move_pages() of its pages: copy + unmap/TLB shootdown
    reclaim_time: float = 0.0         # direct reclaim stalls in its page faults
    swapin_time: float = 0.0          # major faults
    hint_fault_time: float = 0.0      # NUMA hint faults taken for kernel tiering (minor faults)
    lost_accesses: float = 0.0        # accesses to pages that could not be allocated (OOM)
    migrated_bytes: int = 0           # by move_pages() and by kernel demotion
    promoted_pages: int = 0           # base pages moved to a higher tier (slow -> fast)
    demoted_pages: int = 0            # base pages moved to a lower tier (kernel or move_pages)
    pingpong: int = 0                 # migrations that reversed the page's previous migration

    def __post_init__(self):
        self.reads = np.zeros(self.nr_nodes)
        self.writes = np.zeros(self.nr_nodes)

    @property
    def accesses(self) -> float:
        return float(self.reads.sum() + self.writes.sum())


@dataclass
class Tenant:
    """A VM or task: a contiguous slice [start, end) of the host's page arrays and one VMA."""
    index: int
    spec: TenantSpec
    start: int
    vma_start: int
    workload: Workload
    pmd_young: np.ndarray | None      # 4 KiB tenants: A bit of each PMD entry pointing at a PTE table
    stats: TenantStats
    mapped: int = 0                   # pages ever faulted in (their page-table entries exist)
    pgtable_pages: int = 0            # base pages of page tables (and EPT for a VM) charged to DRAM
    pgtable_by_node: np.ndarray = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def npages(self) -> int:
        return self.spec.npages

    @property
    def end(self) -> int:
        return self.start + self.spec.npages

    @property
    def page_nr(self) -> int:
        """Base pages per page: 1 for 4 KiB, 512 for a 2 MiB THP."""
        return self.spec.page_size // PAGE_SIZE

    @property
    def huge(self) -> bool:
        return self.page_nr > 1

    @property
    def vma_end(self) -> int:
        return self.vma_start + self.spec.footprint

    def pgtable_target(self) -> int:
        """Page-table pages for what is mapped: one 4 KiB table per 512 entries (8 bytes per entry, 1/512 of
        mapped memory for 4 KiB pages), doubled for a VM whose guest memory is also mapped by the EPT."""
        tables = -(-self.mapped // 512)
        return tables * (2 if self.spec.kind == "vm" else 1)


@dataclass
class MoveResult:
    status: np.ndarray               # int32 per request: node id or -errno
    moved_pages: int = 0             # pages (of the tenant's page size) migrated
    moved_bytes: int = 0
    time: float = 0.0                # modelled seconds of copy + unmap/TLB shootdown


class Host:
    """One simulated host, built from a validated Scenario."""

    # Each tenant is its own process (a VM: its QEMU), so addresses could coincide; placing the mappings
    # 1 TiB apart (16..112 TiB, below x86-64's 128 TiB TASK_SIZE) makes a misrouted address fail loudly.
    VMA_BASE = 16 << 40
    VMA_STRIDE = 1 << 40
    VMA_SLOTS = 96

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.k = scenario.kernel
        nodes = scenario.nodes
        self.nr_nodes = len(nodes)
        self.is_fast = np.array([n.is_fast for n in nodes])
        # memory tiers, ranked: 0 the top (DRAM), each next one slower (scenario.NodeSpec.tier)
        self.tier = np.array([n.tier for n in nodes], dtype=np.int64)
        self.nr_tiers = int(self.tier.max()) + 1
        self.capacity = np.array([n.capacity // PAGE_SIZE for n in nodes], dtype=np.int64)
        self.read_latency = np.array([n.read_latency for n in nodes])
        self.write_latency = np.array([n.write_latency for n in nodes])
        self.read_bw = np.array([n.read_bandwidth for n in nodes])
        self.write_bw = np.array([n.write_bandwidth for n in nodes])
        self.load = NodeLoad(self.read_bw, self.write_bw)     # bandwidth served per node: loaded latency
        self.peer_node = np.array([n.peer_node for n in nodes], dtype=np.int64)
        self.distance = np.array(scenario.distances, dtype=np.int64)
        self.wmark_min = (self.capacity * self.k.wmark_min).astype(np.int64)
        self.wmark_low = (self.capacity * self.k.wmark_low).astype(np.int64)
        self.wmark_high = (self.capacity * self.k.wmark_high).astype(np.int64)
        # WMARK_PROMO = high + the watermarks' spacing (Linux 6.1 setup_per_zone_wmarks)
        self.wmark_promo = 2 * self.wmark_high - self.wmark_low
        # TPP: kswapd keeps WMARK_DEMOTE free on top-tier nodes only
        self.demote_extra = np.where(self.is_fast, (self.capacity * self.k.demote_scale_factor), 0).astype(np.int64)
        # inactive_ratio = int_sqrt(10 * node GiB), 1 below 1 GiB (mm/vmscan.c inactive_is_low)
        gib = self.capacity * PAGE_SIZE / (1 << 30)
        self.inactive_ratio = np.where(gib >= 1, np.floor(np.sqrt(10 * gib)), 1).astype(np.int64)
        self.demotion_target = np.array([n.demotion_target for n in nodes], dtype=np.int64)
        self.zonelist = [self._build_zonelist(n, dram_only=self.k.zonelist == "separate")
                         for n in range(self.nr_nodes)]
        self.dram_zonelist = [self._build_zonelist(n, dram_only=True) for n in range(self.nr_nodes)]

        self.node_used = np.zeros(self.nr_nodes, dtype=np.int64)
        self.node_pgtable = np.zeros(self.nr_nodes, dtype=np.int64)
        self.swap_capacity = self.k.swap // PAGE_SIZE
        self.swap_used = 0
        self.vmstat = dict.fromkeys(VMSTAT_COUNTERS, 0)
        # base pages migrated [source node, destination node]: every migration, and those move_pages(2) asked
        # for (the rest is the kernel's: reclaim's demotion, NUMA-balancing and DAMOS promotion)
        self.migrated_pages = np.zeros((self.nr_nodes, self.nr_nodes), dtype=np.int64)
        self.move_pages_migrated = np.zeros((self.nr_nodes, self.nr_nodes), dtype=np.int64)
        self.kswapd_time = 0.0
        self.kswapd_wake = np.zeros(self.nr_nodes, dtype=bool)

        self.tenants: list[Tenant] = []
        start = 0
        for i, spec in enumerate(scenario.tenants):
            t = self._new_tenant(spec, i, i % self.VMA_SLOTS)
            t.start = start
            self.tenants.append(t)
            start += spec.npages
        self.tenants_added = len(self.tenants)     # tenants ever added: the next one's workload seed
        self.generation = 0                        # bumped by every change of the tenant set (churn.py)
        self.nr_pages = start
        self._index_tenants()

        self.node = np.full(self.nr_pages, NODE_NONE, dtype=np.int8)
        self.flags = np.zeros(self.nr_pages, dtype=np.uint8)
        self.lru_seq = np.zeros(self.nr_pages, dtype=np.uint32)
        self.lru_clock = 1
        self.lru_count = np.zeros((self.nr_nodes, 2), dtype=np.int64)   # pages on each node's two lists
        self._lru_log: np.ndarray | None = None                         # see "LRU" below
        self._lru_len = 0
        self._lru_cursor = np.zeros((self.nr_nodes, 2), dtype=np.int64)
        rng = np.random.default_rng(scenario.seed)
        for t in self.tenants:
            n_pin = int(round(t.spec.pinned * t.npages))
            if n_pin:
                self.flags[t.start + rng.choice(t.npages, n_pin, replace=False)] |= PG_PINNED

        self.tiering = make_tiering(self)
        self.wmark_balance = self.wmark_promo if self.tiering.balance_to_promo else self.wmark_high

        self.tick_no = 0
        self.booted = False

    def _new_tenant(self, spec: TenantSpec, seq: int, vma_slot: int) -> Tenant:
        """Tenant `spec`, the seq-th ever added (its workload's seed), mapped at VMA slot `vma_slot`; its
        slice's start is the caller's to set."""
        wl = make_workload(spec.workload, spec.npages, self.scenario.seed * 1000 + seq, self.scenario.tick)
        pmd = None if spec.page_size > PAGE_SIZE else np.zeros(-(-spec.npages // HPAGE_PMD_NR), np.uint8)
        return Tenant(index=len(self.tenants), spec=spec, start=0,
                      vma_start=self.VMA_BASE + vma_slot * self.VMA_STRIDE, workload=wl, pmd_young=pmd,
                      stats=TenantStats(self.nr_nodes), pgtable_by_node=np.zeros(self.nr_nodes, dtype=np.int64))

    def _index_tenants(self) -> None:
        """Lookups over the tenant list (after it changed)."""
        self.by_name = {t.name: t for t in self.tenants}
        self.tenant_start = np.array([t.start for t in self.tenants], dtype=np.int64)
        self.tenant_page_nr = np.array([t.page_nr for t in self.tenants], dtype=np.int64)

    # ---- topology -------------------------------------------------------------------------------------
    def _build_zonelist(self, nid: int, dram_only: bool) -> list[int]:
        cand = [n for n in range(self.nr_nodes) if self.is_fast[n] or not dram_only]
        # nearest first; DRAM before slow nodes at equal distance
        return sorted(cand, key=lambda n: (not self.is_fast[n], self.distance[nid][n], n))

    @property
    def time(self) -> float:
        return self.tick_no * self.scenario.tick

    def free_pages(self, nid: int) -> int:
        """Free base pages of node nid: its NR_FREE_PAGES (node_page_state()), what the watermarks
        (`wmark_min`, `wmark_low`, `wmark_high`, `wmark_promo`, in base pages per node) are compared with."""
        return int(self.capacity[nid] - self.node_used[nid] - self.node_pgtable[nid])

    def free(self) -> np.ndarray:
        """`free_pages` of every node."""
        return self.capacity - self.node_used - self.node_pgtable

    def tenant(self, key: int | str) -> Tenant:
        if isinstance(key, str):
            if key not in self.by_name:
                raise KeyError(f"no tenant named {key!r} on this host")
            return self.by_name[key]
        if not 0 <= key < len(self.tenants):
            raise KeyError(f"no tenant with index {key}")
        return self.tenants[key]

    def owner(self, slots: np.ndarray) -> np.ndarray:
        """Tenant index of each page slot."""
        return np.searchsorted(self.tenant_start, slots, side="right") - 1

    def page_weight(self, slots: np.ndarray) -> np.ndarray:
        return self.tenant_page_nr[self.owner(slots)]

    def vma(self, t: Tenant) -> Vma:
        """The tenant's anonymous mapping as idle_pages walks it (views into the host's arrays)."""
        return Vma(start=t.vma_start, huge=t.huge, flags=self.flags[t.start:t.end],
                   node=self.node[t.start:t.end], pmd_young=t.pmd_young)

    # ---- LRU ------------------------------------------------------------------------------------------
    # Each node has two evictable LRU lists, inactive (list 0) and active (list 1); pinned pages are on no
    # list. `lru_count[nid, l]` counts their pages. The lists are read from one log of `_lru_add` order:
    # entry j is page `_lru_log[j]`, added at clock j + 1, and is that page's place on its list while
    # lru_seq[page] == j + 1 (it has not been added again since) and the page is still on a node. A page
    # changes list (node, PG_active, pinning) only with an `_lru_add` or by leaving the node (swap, freeing),
    # so a list's pages in log order are that list oldest first; a cursor per list skips the prefix of the
    # log that holds none of them. Reclaim thus costs the pages it looks at, not the node's pages. The log
    # is built from lru_seq when reclaim first needs it (a sort), compacted in place when full, dropped
    # at the end of boot and after churn (agent/churn.py calls `lru_relayout`).
    LRU_LISTED = PG_PINNED | PG_ACTIVE                 # flags & LRU_LISTED: 0 inactive, PG_ACTIVE active

    def folio_activate(self, slots: np.ndarray) -> None:
        """mm/swap.c folio_activate(): set PG_active on the pages and move them to the head of their LRU list,
        in the order given."""
        u = np.unique(slots)
        self._lru_count_pages(u, -1)
        self.flags[slots] |= PG_ACTIVE
        self._lru_count_pages(u, 1)
        self._lru_add(slots)

    def _lru_count_pages(self, slots: np.ndarray, sign: int) -> None:
        """Add (sign 1) or remove (-1) distinct pages `slots` to or from the counts of the lists they are on
        (by their node and flags now)."""
        nd = self.node[slots]
        state = self.flags[slots] & self.LRU_LISTED
        on = (nd >= 0) & (state != PG_PINNED) & (state != self.LRU_LISTED)
        code = nd[on].astype(np.int64) * 2 + (state[on] != 0)
        self.lru_count += sign * np.bincount(code, minlength=2 * self.nr_nodes).reshape(self.nr_nodes, 2)

    def lru_relayout(self) -> None:
        """The page arrays were laid out again (agent/churn.py): recount the lists, drop the log."""
        nd, state = self.node, self.flags & self.LRU_LISTED
        for l, want in enumerate((0, PG_ACTIVE)):
            self.lru_count[:, l] = pages_per_node(np.where(state == want, nd, NODE_NONE), self.nr_nodes)
        self._lru_log = None

    def _lru_build(self) -> None:
        """The log from lru_seq: every page on a node, oldest first, renumbered 1.. (order kept)."""
        on = np.flatnonzero(self.node >= 0)
        order = on[np.argsort(self.lru_seq[on], kind="stable")]
        n = order.size
        # room for every page and a quarter more (np.empty: only what is written becomes resident), so the log
        # is compacted, not grown, as it fills
        size = max(n, self.nr_pages) + max(self.nr_pages // 4, 1 << 12)
        self._lru_log = np.empty(size, dtype=np.int32 if self.nr_pages < 2**31 else np.int64)
        self._lru_log[:n] = order
        self._lru_len = n
        self.lru_seq[order] = np.arange(1, n + 1, dtype=np.uint32)
        self.lru_clock = n + 1
        self._lru_cursor = np.zeros((self.nr_nodes, 2), dtype=np.int64)

    def _lru_compact(self) -> None:
        """Drop the log's dead entries in place (chunk by chunk, keeping order) and renumber the live ones."""
        log, n, w = self._lru_log, self._lru_len, 0
        old_cursor, cursor = self._lru_cursor, np.zeros_like(self._lru_cursor)
        chunk = 1 << 16                                  # small temporaries
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            seg = log[a:b]
            live = (self.lru_seq[seg] == np.arange(a + 1, b + 1, dtype=np.uint32)) & (self.node[seg] >= 0)
            inside = (old_cursor >= a) & (old_cursor < b)
            for nid, l in zip(*np.nonzero(inside)):
                cursor[nid, l] = w + np.count_nonzero(live[:old_cursor[nid, l] - a])
            kept = seg[live]
            log[w:w + kept.size] = kept
            self.lru_seq[kept] = np.arange(w + 1, w + kept.size + 1, dtype=np.uint32)
            w += kept.size
        cursor[old_cursor >= n] = w
        self._lru_len, self.lru_clock, self._lru_cursor = w, w + 1, cursor

    def _lru_add(self, slots: np.ndarray) -> None:
        """Put pages at the head of their LRU list, in the order given."""
        n = len(slots)
        if self._lru_log is None:
            if self.lru_clock + n >= LRU_SEQ_LIMIT:
                self._lru_build()
        if self._lru_log is not None:
            if self._lru_len + n > self._lru_log.size:
                self._lru_compact()
                if self._lru_len + n > self._lru_log.size:     # a batch larger than the slack: grow
                    grown = np.empty(self._lru_len + n + max(self.nr_pages // 4, 1 << 12), dtype=self._lru_log.dtype)
                    grown[:self._lru_len] = self._lru_log[:self._lru_len]
                    self._lru_log = grown
            self._lru_log[self._lru_len:self._lru_len + n] = slots
            self._lru_len += n
        self.lru_seq[slots] = np.arange(self.lru_clock, self.lru_clock + n, dtype=np.uint32)
        self.lru_clock += n

    def _lru_oldest(self, nid: int, lst: int, k: int) -> np.ndarray:
        """The k pages longest on node nid's inactive (lst 0) or active (1) list, oldest first: the list's
        first k entries in the log from its cursor, which moves to the first of them."""
        if self._lru_log is None:
            self._lru_build()
        log, n = self._lru_log, self._lru_len
        want = np.uint8(PG_ACTIVE if lst else 0)
        pos = int(self._lru_cursor[nid, lst])
        first, found, out = -1, 0, []
        step = max(2 * k, 1 << 14)
        while found < k and pos < n:
            end = min(n, pos + step)
            seg = log[pos:end]
            hit = np.flatnonzero((self.lru_seq[seg] == np.arange(pos + 1, end + 1, dtype=np.uint32))
                                 & (self.node[seg] == nid) & ((self.flags[seg] & self.LRU_LISTED) == want))
            if first < 0 and hit.size:
                first = pos + int(hit[0])
            take = hit[:k - found]
            out.append(seg[take])
            found += take.size
            pos = end
            step *= 2
        self._lru_cursor[nid, lst] = first if first >= 0 else pos
        return np.concatenate(out).astype(np.int64) if out else np.empty(0, dtype=np.int64)

    # ---- allocation -----------------------------------------------------------------------------------
    def _fill(self, zonelist: list[int], out: np.ndarray, done: int, pw: int, wmark: np.ndarray) -> int:
        for nid in zonelist:
            if done == len(out):
                break
            room = (self.free_pages(nid) - int(wmark[nid])) // pw
            k = min(len(out) - done, max(room, 0))
            if k:
                out[done:done + k] = nid
                self.node_used[nid] += k * pw
                done += k
        return done

    def _alloc(self, t: Tenant, n: int, pw: int, dram_only: bool = False, zl: list[int] | None = None) -> np.ndarray:
        """Nodes for n new pages of pw base pages each, faulted by tenant t, following the page allocator's
        slow path down zonelist `zl` (default: the home node's); NODE_NONE where even direct reclaim found no room."""
        out = np.full(n, NODE_NONE, dtype=np.int8)
        if zl is None:
            zl = self.dram_zonelist[t.spec.home_node] if dram_only else self.zonelist[t.spec.home_node]
        done = self._fill(zl, out, 0, pw, self.wmark_low)
        if done < n:
            self.wakeup_kswapd(zl)
            done = self._fill(zl, out, done, pw, self.wmark_min)
        for nid in zl:
            if done == n or not self.is_fast[nid]:
                continue
            for _ in range(4):
                got = self._shrink_node(nid, (n - done) * pw + SWAP_CLUSTER_MAX, direct=True, stall=t)
                done = self._fill(zl, out, done, pw, self.wmark_min)
                if done == n or got == 0:
                    break
        if done < n:
            self.vmstat["pgalloc_fail"] += (n - done) * pw
        return out

    def _fault_in(self, t: Tenant, slots: np.ndarray, write: bool = False) -> None:
        """Fault in not-present pages (never touched or swapped out), in the order given. Faults happen one
        at a time in reality, each new page joining the LRU where reclaim for later faults can find it: a
        batch is therefore allocated in steps small against the home node."""
        step = max(1, int(self.capacity[t.spec.home_node]) // 16 // t.page_nr)
        for lo in range(0, len(slots), step):
            self._fault_in_step(t, slots[lo:lo + step], write)

    def _alloc_interleave(self, t: Tenant, slots: np.ndarray, pw: int) -> np.ndarray:
        """Nodes for tenant t's pages `slots` under MPOL_INTERLEAVE: page i asks for node interleave[i % k],
        falling back along that node's zonelist (the node itself first) when it has no room."""
        il = t.spec.interleave
        want = np.asarray(il)[(slots - t.start) % len(il)]
        out = np.full(len(slots), NODE_NONE, dtype=np.int8)
        for nid in il:
            sel = np.flatnonzero(want == nid)
            if sel.size:
                out[sel] = self._alloc(t, sel.size, pw, zl=[nid] + [n for n in self.zonelist[nid] if n != nid])
        return out

    def _fault_in_step(self, t: Tenant, slots: np.ndarray, write: bool) -> None:
        pw = t.page_nr
        was = self.node[slots]
        swapped = was == NODE_SWAP
        new = int((~swapped).sum())
        t.mapped += new
        pt_need = t.pgtable_target() - t.pgtable_pages
        if pt_need > 0:
            pt_nodes = self._alloc(t, pt_need, 1, dram_only=True)
            ok = pt_nodes[pt_nodes >= 0]
            by_node = np.bincount(ok, minlength=self.nr_nodes)
            self.node_used -= by_node                # _alloc charged them as tenant memory
            self.node_pgtable += by_node
            t.pgtable_by_node += by_node
            t.pgtable_pages += len(ok)
        nodes = self._alloc_interleave(t, slots, pw) if t.spec.interleave else self._alloc(t, len(slots), pw)
        ok = nodes >= 0
        okslots = slots[ok]
        self.node[okslots] = nodes[ok]
        keep = self.flags[okslots] & ALWAYS_KEPT
        # a fault maps the page young (and dirty for a write); new anon pages start on the inactive list
        self.flags[okslots] = keep | PG_ACCESSED | (PG_DIRTY if write else 0)
        self._lru_count_pages(okslots, 1)
        self._lru_add(okslots)
        n_swapin = int((swapped & ok).sum())
        if n_swapin:
            self.swap_used -= n_swapin * pw
            self.vmstat["pswpin"] += n_swapin * pw
            self.vmstat["pgmajfault"] += n_swapin
            t.stats.swapin_time += n_swapin * self.k.swap_in_latency
        failed_new = int((~swapped & ~ok).sum())
        t.mapped -= failed_new
        self.vmstat["pgfault"] += int(ok.sum())

    def boot(self) -> None:
        """Prefaulting tenants touch (write) all their memory in address order, round-robin in 64 MiB steps
        so that no tenant boots first and takes all the DRAM."""
        if self.booted:
            return
        self.booted = True
        step = (64 << 20) // PAGE_SIZE
        pos = {t.index: 0 for t in self.tenants if t.spec.prefault}
        while pos:
            for i in list(pos):
                t = self.tenants[i]
                chunk = max(1, step // t.page_nr)
                lo = pos[i]
                hi = min(t.npages, lo + chunk)
                self._fault_in(t, np.arange(t.start + lo, t.start + hi), write=True)
                if t.pmd_young is not None:
                    t.pmd_young[lo // HPAGE_PMD_NR:-(-hi // HPAGE_PMD_NR)] = 1
                pos[i] = hi
                if hi == t.npages:
                    del pos[i]
            self._kswapd()
        self.load.discard_tick()        # booting happens before time 0: its copies load no tick
        self._lru_log = None            # built again if reclaim needs it

    # ---- accesses -------------------------------------------------------------------------------------
    def access(self, t: Tenant, pages: np.ndarray, is_write: np.ndarray, weight: float) -> np.ndarray:
        """Apply one tick's sampled accesses of tenant t (page offsets, with repeats); each sample stands for
        `weight` real accesses. Returns the node that served each sample (NODE_NONE: could not be mapped)."""
        slots = pages.astype(np.int64) + t.start
        cur = self.node[slots]
        missing = cur < 0
        every = not missing.any()                  # every sample mapped: no masks to apply
        if not every:
            ms = slots[missing]
            uniq, first = np.unique(ms, return_index=True)
            order = uniq[np.argsort(first, kind="stable")]
            self._fault_in(t, order, write=False)
            cur = self.node[slots]
            every = bool((cur >= 0).all())
        st = t.stats
        nn = self.nr_nodes
        served = None if every else cur >= 0
        s, w, on = (slots, is_write, cur) if every else (slots[served], is_write[served], cur[served])
        # reads and writes per node by one count of node x 2 + is_write
        rw = np.bincount(on.astype(np.intp) * 2 + w, minlength=2 * nn).reshape(nn, 2) * weight
        reads, writes = rw[:, 0], rw[:, 1]
        st.reads += reads
        st.writes += writes
        # each node's loaded latency (agent/bandwidth.py: the last tick's load); the references stay idle
        lf = self.load.factor
        st.access_time += float(reads @ (self.read_latency * lf) + writes @ (self.write_latency * lf))
        self.load.accesses(reads, writes)
        home = t.spec.home_node
        slow = self.slow_node_of(home)
        nr, nw = reads.sum(), writes.sum()
        st.dram_time += nr * self.read_latency[home] + nw * self.write_latency[home]
        st.slow_time += nr * self.read_latency[slow] + nw * self.write_latency[slow]
        if not every:
            st.lost_accesses += float((~served).sum()) * weight
        # hardware sets A (and D on a write) by a page walk; a translation still cached in the TLB since a
        # scan cleared A does not walk, so A stays clear until the scan's flush. A is bit 0 (asserted at the
        # top): f | walked sets it where walked, the same value for a slot sampled twice
        f = self.flags[s]
        walked = (f & PG_TLB_CACHED) == 0
        self.flags[s] = f | walked.view(np.uint8)
        self.flags[s[w]] |= PG_DIRTY
        if t.pmd_young is not None:
            t.pmd_young[(s[walked] - t.start) // HPAGE_PMD_NR] = 1
        self.tiering.on_access(self, t, s)
        return cur

    def slow_node_of(self, nid: int) -> int:
        """The slow node a DRAM node's pages go to: its peer, else the nearest slow node, else itself."""
        if self.peer_node[nid] >= 0:
            return int(self.peer_node[nid])
        slow = [n for n in np.argsort(self.distance[nid], kind="stable") if not self.is_fast[n]]
        return int(slow[0]) if slow else nid

    def flush_tlb_pages(self, slots: np.ndarray) -> None:
        """Flush the pages' translations from the TLB, as flush_tlb_range() does after a PTE change (e.g.
        change_prot_numa()): the next access walks the page table, so it sets the Accessed bit again."""
        self.flags[slots] &= ~PG_TLB_CACHED

    # ---- reclaim --------------------------------------------------------------------------------------
    def wakeup_kswapd(self, nid: int | np.ndarray | list[int]) -> None:
        """mm/vmscan.c wakeup_kswapd(): at its next run (after the tenants' accesses of a tick) kswapd
        reclaims on node(s) nid up to their balance watermark even if they are above the low watermark by then."""
        self.kswapd_wake[nid] = True

    def _kswapd(self) -> None:
        """Run kswapd on every node below its wake-up watermark, the top tier first, then each lower tier
        (a tier's demotions may push the next one below its own)."""
        free = self.free()
        for nid in sorted(range(self.nr_nodes), key=lambda n: self.tier[n]):
            target = int(self.wmark_balance[nid] + self.demote_extra[nid])
            wake = self.kswapd_wake[nid] or free[nid] < self.wmark_low[nid] + self.demote_extra[nid]
            if wake and self.free_pages(nid) < target:
                can_demote = self.k.demotion_enabled and self.demotion_target[nid] >= 0
                if self.is_fast[nid] or can_demote or self.swap_capacity > self.swap_used:
                    self._shrink_node(nid, target - self.free_pages(nid), direct=False)
            self.kswapd_wake[nid] = False

    def _shrink_node(self, nid: int, nr_to_reclaim: int, direct: bool, stall: Tenant | None = None) -> int:
        """Reclaim at least nr_to_reclaim base pages from node nid (best effort). Returns base pages freed."""
        reclaimed = 0
        for rnd in range(RECLAIM_ROUNDS):
            if reclaimed >= nr_to_reclaim:
                break
            nr_inactive, nr_active = (int(x) for x in self.lru_count[nid])
            if nr_inactive == 0 and nr_active == 0:
                break
            # the weight reclaim counts pages in: the page size of the lowest slot on the inactive list
            w_avg = 1
            if nr_inactive:
                uniform = (self.tenant_page_nr == self.tenant_page_nr[0]).all()
                w_avg = int(self.tenant_page_nr[0]) if uniform else self._first_inactive_weight(nid)
            ratio = int(self.inactive_ratio[nid])
            if nr_inactive * ratio < nr_active:
                # shrink_active_list: move the oldest active pages to the inactive head; page_referenced()
                # clears their A bits on the way (anon pages are deactivated even if referenced)
                k = int(min(nr_active, max((nr_active - nr_inactive * ratio) // (ratio + 1), SWAP_CLUSTER_MAX)))
                victims = self._lru_oldest(nid, 1, k)
                self.flags[victims] &= ~(PG_ACTIVE | PG_ACCESSED | PG_TLB_CACHED)
                self.lru_count[nid] += (k, -k)
                self._lru_add(victims)
                if nr_inactive == 0:
                    w_avg = int(self.page_weight(victims[:1])[0])
                nr_inactive += k
            if nr_inactive == 0:
                continue
            remaining = nr_to_reclaim - reclaimed
            w_avg = max(1, w_avg)
            # like the kernel's priority loop, each round may scan a larger part of the list
            priority = max(0, DEF_PRIORITY - 2 * rnd)
            k = int(min(nr_inactive, max(SWAP_CLUSTER_MAX, 2 * -(-remaining // w_avg), nr_inactive >> priority)))
            batch = self._lru_oldest(nid, 0, k)
            reclaimed += self._shrink_inactive(nid, batch, remaining, direct, stall)
        return reclaimed

    def _first_inactive_weight(self, nid: int) -> int:
        """Base pages of the lowest-slot page on node nid's inactive list (not empty); a pass over every
        page, needed only where tenants' page sizes differ."""
        on = (self.node == nid) & ((self.flags & self.LRU_LISTED) == 0)
        return int(self.page_weight(np.array([np.argmax(on)]))[0])

    def _shrink_inactive(self, nid: int, batch: np.ndarray, remaining: int, direct: bool,
                         stall: Tenant | None) -> int:
        """Scan `batch` (inactive pages, oldest first) until `remaining` base pages are reclaimed."""
        f = self.flags[batch]
        referenced_ptes = (f & PG_ACCESSED) != 0
        referenced_page = (f & PG_REFERENCED) != 0
        candidate = ~referenced_ptes & ~referenced_page
        w = self.page_weight(batch)
        cum = np.cumsum(np.where(candidate, w, 0))
        stop = int(np.searchsorted(cum, remaining)) + 1       # pages scanned before enough is found
        batch, f, w = batch[:stop], f[:stop], w[:stop]
        referenced_ptes, referenced_page, candidate = referenced_ptes[:stop], referenced_page[:stop], candidate[:stop]
        activate = referenced_ptes & referenced_page
        keep = ~candidate & ~activate
        # page_referenced() test-and-clears A (flushing the TLB entry); PG_referenced is test-and-cleared
        f = f & ~(PG_ACCESSED | PG_TLB_CACHED | PG_REFERENCED)
        f = np.where(referenced_ptes, f | PG_REFERENCED, f)
        f = np.where(activate, f | PG_ACTIVE, f)
        self.flags[batch] = f
        n_act = int(np.count_nonzero(activate))
        self.lru_count[nid] += (-n_act, n_act)
        self._lru_add(batch[activate | keep])
        victims, vw = batch[candidate], w[candidate]
        return self._evict(nid, victims, vw, direct, stall)

    def _evict(self, nid: int, victims: np.ndarray, vw: np.ndarray, direct: bool, stall: Tenant | None) -> int:
        """Demote victims to the node's demotion target (next lower tier) where possible, else swap them out,
        else put them back."""
        if victims.size == 0:
            return 0
        freed = 0
        done = np.zeros(victims.size, dtype=bool)
        target = int(self.demotion_target[nid])
        if self.k.demotion_enabled and target >= 0:
            room = self.free_pages(target) - int(self.wmark_min[target])
            short = int(vw.sum()) - room
            if short > 0 and self.demotion_target[target] >= 0:
                # a target that demotes further (a middle tier): its kswapd, woken by the failing demotion
                # allocations (alloc_demote_folio is GFP_NOWAIT), runs beside this reclaim on a real kernel
                # and demotes to the tier below it; the model runs it here, so a burst of demotions goes down
                # the tiers instead of to swap while a lower tier has room
                self._shrink_node(target, short + SWAP_CLUSTER_MAX, direct=False)
                room = self.free_pages(target) - int(self.wmark_min[target])
            ok = np.cumsum(vw) <= room
            if ok.any():
                t_time = self.migrate_pages(victims[ok], vw[ok], nid, target)
                self.vmstat["pgdemote_direct" if direct else "pgdemote_kswapd"] += int(vw[ok].sum())
                if direct and stall is not None:
                    stall.stats.reclaim_time += t_time
                else:
                    self.kswapd_time += t_time
                freed += int(vw[ok].sum())
                done |= ok
            self.vmstat["pgmigrate_fail"] += int(vw[~ok].sum())
        rest = ~done
        if rest.any():
            room = self.swap_capacity - self.swap_used
            ok = rest & (np.cumsum(np.where(rest, vw, 0)) <= room)
            if ok.any():
                s, sw = victims[ok], vw[ok]
                self._lru_count_pages(s, -1)
                self.node[s] = NODE_SWAP
                self.node_used[nid] -= int(sw.sum())
                self.flags[s] &= ALWAYS_KEPT
                self.swap_used += int(sw.sum())
                self.vmstat["pswpout"] += int(sw.sum())
                freed += int(sw.sum())
                done |= ok
        if not done.all():
            self._lru_add(victims[~done])   # migration failed and no swap: back on the LRU
        # shrink_folio_list() counts demoted pages as reclaimed (nr_reclaimed += nr_demoted), so pgsteal_* has
        # both demoted and swapped-out pages
        self.vmstat["pgsteal_direct" if direct else "pgsteal_kswapd"] += freed
        return freed

    def migrate_pages(self, slots: np.ndarray, w: np.ndarray, src: int | np.ndarray, dst: int) -> float:
        """mm/migrate.c migrate_pages() (the kernel's, not the migrate_pages(2) call) once the pages are
        isolated and their new pages allocated: move pages `slots` of `w` base pages each from node(s) src
        to node dst, keeping their page state, and put them at the head of the LRU. The caller has checked
        that dst has room and that no page is pinned. Counts pgmigrate_success, each tenant's migrated,
        promoted and demoted pages and ping-pongs; returns the modelled copy + unmap/TLB-shootdown time.
        Demotion, move_pages(), NUMA-balancing promotion and DAMOS migrate through it."""
        src = np.broadcast_to(np.asarray(src, dtype=np.int64), slots.shape)
        by_src = np.bincount(src, weights=w, minlength=self.nr_nodes).astype(np.int64)   # exact below 2**53
        self.node_used -= by_src
        self.node_used[dst] += int(w.sum())
        self._lru_count_pages(slots, -1)
        self.node[slots] = dst
        self._lru_count_pages(slots, 1)
        promote = self.tier[src] > self.tier[dst]          # to a higher tier
        demote = self.tier[src] < self.tier[dst]
        f = self.flags[slots]
        pingpong = (promote & ((f & PG_LAST_DEMOTE) != 0)) | (demote & ((f & PG_LAST_PROMOTE) != 0))
        f = np.where(promote, (f & ~PG_LAST_DEMOTE) | PG_LAST_PROMOTE, f)
        f = np.where(demote, (f & ~PG_LAST_PROMOTE) | PG_LAST_DEMOTE, f)
        self.flags[slots] = f.astype(np.uint8)
        self._lru_add(slots)
        nbytes = w * PAGE_SIZE
        # the copy reads the source and writes the destination, at the slower side's bandwidth, slowed as
        # that node's accesses are by its load, and takes their bandwidth; then unmap + TLB shootdown per page
        bw = np.minimum(self.read_bw[src], self.write_bw[dst])
        slowed = np.maximum(self.load.factor[src], self.load.factor[dst])
        per_page = nbytes / bw * slowed + self.k.migration_overhead
        self.load.migration(src, dst, nbytes)
        owner = self.owner(slots)
        nt = len(self.tenants)
        by_t_bytes = np.bincount(owner, weights=nbytes, minlength=nt)
        by_t_prom = np.bincount(owner, weights=np.where(promote, w, 0), minlength=nt)
        by_t_dem = np.bincount(owner, weights=np.where(demote, w, 0), minlength=nt)
        by_t_pp = np.bincount(owner, weights=pingpong, minlength=nt)
        for i in np.flatnonzero(by_t_bytes):
            st = self.tenants[i].stats
            st.migrated_bytes += int(by_t_bytes[i])
            st.promoted_pages += int(by_t_prom[i])
            st.demoted_pages += int(by_t_dem[i])
            st.pingpong += int(by_t_pp[i])
        self.vmstat["pgmigrate_success"] += int(w.sum())
        self.migrated_pages[:, dst] += by_src
        return float(per_page.sum())

    def migrate_misplaced_folio(self, t: Tenant, slots: np.ndarray, nid: int) -> int:
        """mm/migrate.c migrate_misplaced_folio() for a batch of tenant t's pages that took NUMA hint faults,
        in order: each moves to node nid while nid stays above its high watermark after the move
        (numamigrate_isolate_folio's migrate_balanced_pgdat check); the others are not isolated and stay
        where they are, and kswapd is woken on nid to make room. Counts pgpromote_success; the faulting task
        copies the pages, so the time is its migration time. Returns the pages moved."""
        pw = t.page_nr
        k = int(min(slots.size, max(0, (self.free_pages(nid) - int(self.wmark_high[nid])) // pw)))
        if k < slots.size:
            self.wakeup_kswapd(nid)
        if k == 0:
            return 0
        ok = slots[:k]
        tm = self.migrate_pages(ok, np.full(k, pw, dtype=np.int64), self.node[ok].astype(np.int64), nid)
        self.vmstat["pgpromote_success"] += k * pw
        t.stats.migration_time += tm
        return k

    # ---- move_pages(2) --------------------------------------------------------------------------------
    def move_pages(self, tenant: int | str, addresses, nodes, flags: int = MPOL_MF_MOVE) -> MoveResult:
        """move_pages(pid, count, pages, nodes, status, flags) on tenant's address space. With nodes None
        (NULL) nothing moves and status is the node each page is on, as move_pages(2) reports it. Per-page status is
        the target node on success or a negative errno: -EINVAL node does not exist, -EFAULT address not in
        the tenant's mapping, -ENOENT page not present, -EBUSY pinned or already being migrated in this
        batch, -ENOMEM no room on the target node (above its min watermark). With MPOL_MF_SW_YOUNG a page
        already on its target node is marked PG_referenced. Raises ValueError (the whole call's EINVAL) for
        unknown flags or mismatched arrays; KeyError for an unknown tenant."""
        t = self.tenant(tenant)
        if flags & ~MOVE_PAGES_FLAGS or (flags & MPOL_MF_MOVE and flags & MPOL_MF_MOVE_ALL):
            raise ValueError(f"move_pages: invalid flags {flags:#x}")
        addrs = np.asarray(addresses, dtype=np.uint64).ravel()
        if nodes is None:
            return self._page_nodes(t, addrs)
        target = np.asarray(nodes, dtype=np.int64).ravel()
        if addrs.shape != target.shape:
            raise ValueError("move_pages: pages and nodes differ in length")
        n = addrs.size
        status = np.zeros(n, dtype=np.int32)
        bad_node = (target < 0) | (target >= self.nr_nodes)
        inside = (addrs >= np.uint64(t.vma_start)) & (addrs < np.uint64(t.vma_end)) & ~bad_node
        status[bad_node] = -errno.EINVAL
        status[~bad_node & ~inside] = -errno.EFAULT
        idx = np.flatnonzero(inside)
        off = ((addrs[idx] - np.uint64(t.vma_start)) // np.uint64(t.spec.page_size)).astype(np.int64)
        slots = off + t.start
        tgt = target[idx]
        result = MoveResult(status=status)
        if idx.size == 0:
            return result
        # the kernel migrates runs of consecutive requests for the same node together, in order, so a page
        # named again in a later run is seen where the earlier run put it
        run_starts = np.flatnonzero(np.concatenate([[True], tgt[1:] != tgt[:-1]]))
        for a, b in zip(run_starts, np.append(run_starts[1:], idx.size)):
            self._move_run(t, idx[a:b], slots[a:b], int(tgt[a]), flags, result)
        return result

    def _page_nodes(self, t: Tenant, addrs: np.ndarray) -> MoveResult:
        """move_pages(2) with nodes NULL: per address the node its page is on, -ENOENT if not present,
        -EFAULT outside the mapping."""
        inside = (addrs >= np.uint64(t.vma_start)) & (addrs < np.uint64(t.vma_end))
        status = np.full(addrs.size, -errno.EFAULT, dtype=np.int32)
        slots = ((addrs[inside] - np.uint64(t.vma_start)) // np.uint64(t.spec.page_size)).astype(np.int64) + t.start
        cur = self.node[slots].astype(np.int32)
        status[inside] = np.where(cur >= 0, cur, -errno.ENOENT)
        return MoveResult(status=status)

    def _move_run(self, t: Tenant, req: np.ndarray, slots: np.ndarray, dst: int, flags: int,
                  result: MoveResult) -> None:
        status = result.status
        cur = self.node[slots].astype(np.int64)
        pinned = (self.flags[slots] & PG_PINNED) != 0
        not_present = cur < 0
        status[req[not_present]] = -errno.ENOENT
        status[req[~not_present & pinned]] = -errno.EBUSY
        live = ~not_present & ~pinned
        already = live & (cur == dst)
        status[req[already]] = dst
        if flags & MPOL_MF_SW_YOUNG:
            self.flags[slots[already]] |= PG_REFERENCED
        mv = np.flatnonzero(live & ~already)
        # a page named twice: the first request isolates it for migration, later ones find it busy
        _, first = np.unique(slots[mv], return_index=True)
        dup = np.ones(mv.size, dtype=bool)
        dup[first] = False
        status[req[mv[dup]]] = -errno.EBUSY
        mv = mv[~dup]
        if mv.size == 0:
            return
        pw = t.page_nr
        room = (self.free_pages(dst) - int(self.wmark_min[dst])) // pw
        k = int(min(max(room, 0), mv.size))
        ok, fail = mv[:k], mv[k:]
        status[req[fail]] = -errno.ENOMEM
        self.vmstat["pgmigrate_fail"] += fail.size * pw
        if k == 0:
            return
        src = cur[ok]
        promoted = int((self.tier[src] > self.tier[dst]).sum())
        tm = self.migrate_pages(slots[ok], np.full(k, pw, dtype=np.int64), src, dst)
        self.move_pages_migrated[:, dst] += np.bincount(src, minlength=self.nr_nodes) * pw
        self.vmstat["pgpromote_success"] += promoted * pw
        t.stats.migration_time += tm
        result.time += tm
        result.moved_pages += k
        result.moved_bytes += k * pw * PAGE_SIZE
        status[req[ok]] = dst

    # ---- time -----------------------------------------------------------------------------------------
    def run_tick(self) -> list[np.ndarray]:
        """Advance one tick: every tenant's sampled accesses, then kswapd, then the tiering mode's periodic
        work. Returns per tenant the sampled page offsets, for accounting."""
        if not self.booted:
            self.boot()
        samples = []
        for t in self.tenants:
            pages, is_write = t.workload.sample(self.tick_no)
            self.access(t, pages, is_write, t.workload.accesses_per_sample)
            samples.append(pages)
        self._kswapd()
        self.tiering.on_tick(self)
        self.load.end_tick(self.scenario.tick)
        self.tick_no += 1
        return samples

    # ---- checks ---------------------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Raise AssertionError if the model's state is inconsistent: every page on exactly one node, in
        swap, or never faulted; usage per node matches the pages on it; no node over capacity; page tables
        only on DRAM; swap within its size."""
        node = self.node
        assert ((node >= NODE_SWAP) & (node < self.nr_nodes)).all(), "page on a node that does not exist"
        used = np.zeros(self.nr_nodes, dtype=np.int64)
        swapped = 0
        for t in self.tenants:
            nd = node[t.start:t.end]
            used += pages_per_node(nd, self.nr_nodes) * t.page_nr
            swapped += np.count_nonzero(nd == NODE_SWAP) * t.page_nr
            assert t.pgtable_by_node.sum() == t.pgtable_pages, f"{t.name}: page-table pages drifted"
            assert (t.pgtable_by_node[~self.is_fast] == 0).all(), f"{t.name}: page tables off DRAM"
            assert t.mapped == nd.size - np.count_nonzero(nd == NODE_NONE), f"{t.name}: mapped count drifted"
        assert (used == self.node_used).all(), f"node usage drifted: {used} vs {self.node_used}"
        assert swapped == self.swap_used, f"swap usage drifted: {swapped} vs {self.swap_used}"
        assert self.swap_used <= self.swap_capacity, "swap over capacity"
        assert (self.node_used + self.node_pgtable <= self.capacity).all(), "node over capacity"
        assert (self.node_pgtable[~self.is_fast] == 0).all(), "page tables on a slow node"
        assert (self.node_pgtable == sum(t.pgtable_by_node for t in self.tenants)).all(), "page tables drifted"
        state = self.flags & self.LRU_LISTED
        on_node = [node == n for n in range(self.nr_nodes)]
        for lst, want in enumerate((0, PG_ACTIVE)):
            listed = state == want
            counts = np.array([np.count_nonzero(listed & on) for on in on_node], dtype=np.int64)
            assert (self.lru_count[:, lst] == counts).all(), f"LRU list {lst} counts drifted: {self.lru_count[:, lst]}"
            if self._lru_log is not None:
                on = np.flatnonzero((node >= 0) & listed)
                pos = self.lru_seq[on].astype(np.int64) - 1
                assert ((pos >= 0) & (pos < self._lru_len)).all() and (self._lru_log[pos] == on).all(), \
                    "a page on an LRU list has no entry in the LRU log"
                assert (pos >= self._lru_cursor[node[on], lst]).all(), "an LRU cursor skipped a page of its list"

    def state_bytes_per_page(self) -> float:
        return (self.node.itemsize + self.flags.itemsize + self.lru_seq.itemsize
                + self.tiering.state_bytes_per_page())
