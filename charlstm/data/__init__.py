"""Text in, ids out: reading text strictly, the vocabulary and its unknown-character policy,
preparing ids, the train/validation split and the stream layout. Knows no models and no terminal."""
