"""Training: the loop (loop.py) and the parts it uses — the budget's clock, the learning rate,
validation and the weights' average, the checkpoint writer, the log and events, stopping, resume,
size fitting, distributed. Prints nothing: progress goes to a callback as typed events."""
