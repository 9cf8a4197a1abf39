import sys, time
from rl_repara import TrainConfig, train
from rl_repara.agent.presets import sac_config
from rl_repara.training.config import EvalConfig, LogConfig
name, seed = sys.argv[1], int(sys.argv[2])
small = {"width": 128, "blocks": 1}
actor = {"width": 64, "blocks": 1}
extra = {"simbav2": dict(lr_end=1e-4), "flashsac": dict(lr_end=5e-4, batch_size=256)}[name]
agent = sac_config(name, critic_arch_kwargs=small, actor_arch_kwargs=actor, utd=1, gamma=0.99,
                   learning_starts=1000, lr=1e-3, **extra)
t = time.time()
cfg = TrainConfig(seed=seed, total_steps=20000, run_dir=f"/tmp/work/{name}_{seed}", torch_threads=1, agent=agent,
    eval=EvalConfig(every_steps=1000, episodes=10, stop_return=-200), log=LogConfig(progress="none"))
r = train(cfg); print(name, seed, r.last_eval_return, r.global_step, round(time.time() - t), flush=True)
