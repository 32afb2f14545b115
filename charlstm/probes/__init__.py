"""The seeds' synthetic tasks ("Exploring LSTMs"): their corpora, recipes and measurements."""
