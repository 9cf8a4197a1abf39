"""Same as ``rl-repara-train``: ``python scripts/train.py [KEY=VALUE ...]`` (Hydra overrides)."""

from rl_repara.cli.main import train_main

if __name__ == "__main__":
    train_main()
