"""Vocabulary the agent and the controller both speak, beside the generated API (pagetide.v1): human units,
declared options, text tables, wire limits and the gRPC server bootstrap. A leaf: it imports neither side."""
