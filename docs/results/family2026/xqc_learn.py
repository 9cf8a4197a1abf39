import sys, time
from rl_repara import TrainConfig, train
from rl_repara.agent.presets import sac_config
from rl_repara.training.config import EvalConfig, LogConfig
seed = int(sys.argv[1])
t = time.time()
agent = sac_config("xqc", critic_arch_kwargs={"hidden_sizes": [256, 256]}, hidden_sizes=[256, 256], utd=1,
                   gamma=0.99, learning_starts=1000, lr=1e-3, lr_end=1e-4)
cfg = TrainConfig(seed=seed, total_steps=20000, run_dir=f"/tmp/work/xqc_{seed}", torch_threads=1, agent=agent,
    eval=EvalConfig(every_steps=1000, episodes=10, stop_return=-200), log=LogConfig(progress="none"))
r = train(cfg); print("xqc", seed, r.last_eval_return, r.global_step, time.time() - t, flush=True)
