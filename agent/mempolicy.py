"""move_pages(2) flags, one definition for the host model and the real-host mover: MPOL_MF_MOVE and
MPOL_MF_MOVE_ALL from include/uapi/linux/mempolicy.h, and the seed kernel's MPOL_MF_SW_YOUNG (stock kernels
refuse it with EINVAL). No imports, so a real host loads nothing of the model."""

MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2
MPOL_MF_SW_YOUNG = 1 << 7
MOVE_PAGES_FLAGS = MPOL_MF_MOVE | MPOL_MF_MOVE_ALL | MPOL_MF_SW_YOUNG   # every flag a move request may carry
