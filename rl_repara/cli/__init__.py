"""The Hydra commands: the only place Hydra and OmegaConf are imported."""
