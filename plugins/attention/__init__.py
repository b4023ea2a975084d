"""Built-in attention variants: none, SE (its placements and knobs), ECA, CBAM, ESE, GC."""
