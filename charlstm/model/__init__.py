"""The network: embedding, one gate math per cell kind, the fused forward and the stepper, the weights'
average. Imports nothing of data, runs, click, rich or tqdm."""
