"""Same as ``rl-repara-eval``:
``python scripts/evaluate.py checkpoint=RUN_DIR [episodes=N] [video=true]``."""

from rl_repara.cli.main import eval_main

if __name__ == "__main__":
    eval_main()
