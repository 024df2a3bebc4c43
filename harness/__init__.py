"""The simulation harness and benchmark suite: what drives agents and the controller together (the only code
that imports both sides)."""
