"""The run folder and everything in it: checkpoints, the training metadata, the log, the previews, the
caches, the claim and the lock, and export. Knows no training math."""
