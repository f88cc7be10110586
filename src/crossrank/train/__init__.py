"""Training: the cross-encoder model, losses, the LightningModule, data module and callbacks."""
