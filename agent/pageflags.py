"""Per-page state of the host model: flag bits and node sentinels.

The host model keeps one entry per tenant page (a 4 KiB PTE or a 2 MiB PMD mapping) in numpy arrays
(structure of arrays). This module owns the meaning of the bits, named after the kernel state they model.
"""

import numpy as np

# flags: uint8 per page
PG_ACCESSED = np.uint8(0x01)    # hardware Accessed ("young") bit of the PTE / PMD / EPT entry
PG_DIRTY = np.uint8(0x02)       # hardware Dirty bit of the entry (sticky: the scan does not clear it)
PG_REFERENCED = np.uint8(0x04)  # struct page PG_referenced: software second-chance bit (SW_YOUNG sets it)
PG_ACTIVE = np.uint8(0x08)      # page is on the active LRU list (else inactive)
PG_TLB_CACHED = np.uint8(0x10)  # A bit test-and-cleared by an idle_pages scan whose TLB flush (at close)
                                # has not happened yet: accesses hit the TLB and do not set A again
PG_PINNED = np.uint8(0x20)      # pinned (e.g. VFIO DMA, mlock+pin): unevictable, migration gives -EBUSY
PG_LAST_PROMOTE = np.uint8(0x40)  # the page's last migration was slow -> fast (for ping-pong accounting)
PG_LAST_DEMOTE = np.uint8(0x80)   # the page's last migration was fast -> slow

# node: int8 per page
NODE_NONE = -1  # never faulted in (pte_none / pmd_none)
NODE_SWAP = -2  # swapped out (a swap entry: not present)

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT          # 4 KiB base page
HPAGE_PMD_SHIFT = 21
HPAGE_PMD_SIZE = 1 << HPAGE_PMD_SHIFT  # 2 MiB
HPAGE_PMD_NR = HPAGE_PMD_SIZE // PAGE_SIZE  # 512 base pages per PMD
PUD_SIZE = 1 << 30


def pages_per_node(node: np.ndarray, nr_nodes: int) -> np.ndarray:
    """How many of these pages are on each node 0..nr_nodes-1 (int64): a comparison and a count per node,
    several times cheaper than a bincount of the present pages, which first copies each one to an index."""
    return np.array([np.count_nonzero(node == n) for n in range(nr_nodes)], dtype=np.int64)
