"""The run folder and everything in it: the folder with its claim and lock (folder), the log and the
previews (logs), the id and index caches (caches) with the checks of their .npy files (arrays),
checkpoint files (checkpoint) with their training metadata (runinfo), and export. Knows no training
math."""
