"""Generation: sampling as an iterator of characters, and the co-writer's model side."""
