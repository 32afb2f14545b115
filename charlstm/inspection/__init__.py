"""Looking inside: exact traces of every gate, features of text, what the user picked, correlations,
saturation and the atlas. Computes values; draws nothing."""
