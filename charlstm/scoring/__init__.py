"""Scoring text: bits per character, the n-gram baseline and the comparison with it, and the
memorisation check."""
