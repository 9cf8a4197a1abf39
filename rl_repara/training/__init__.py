"""train(config), the Trainer loop, checkpoints, resume, evaluation, logging."""
