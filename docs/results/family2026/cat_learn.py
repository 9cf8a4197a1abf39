import sys, time
from rl_repara import TrainConfig, train
from rl_repara.agent.presets import sac_config
from rl_repara.training.config import EvalConfig, LogConfig
rule = sys.argv[1]
t = time.time()
cfg = TrainConfig(seed=0, total_steps=12000, run_dir=f"/tmp/work/cat_{rule}", torch_threads=1,
    agent=sac_config("sac", env="pendulum", num_bins=101, v_min=-1700.0, v_max=0.0, target_rule=rule),
    eval=EvalConfig(every_steps=1000, episodes=5, stop_return=-200), log=LogConfig(progress="none"))
r = train(cfg); print(rule, r.last_eval_return, r.global_step, time.time() - t)
