"""Data: the image table, decoding once, splits, augmentation, patches."""
