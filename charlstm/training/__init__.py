"""Training: the loop and the parts it uses (schedule, events, stopping, resume, size fitting,
distributed). Prints nothing: progress goes to a callback as typed events."""
