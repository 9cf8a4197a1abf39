"""SAC written by hand around rl_repara's TanhGaussianPolicy and QEnsemble.

This is how someone else's RL code would use the two modules: the replay buffer, the losses,
the optimizers, the target network and the loop are all written here; rl_repara only provides
the actor (a reparameterized tanh-Gaussian with an exact log-density) and the critic ensemble.

    python scripts/custom_loop.py --steps 10000 --seed 0     # Pendulum-v1, about -200 or better
"""

from __future__ import annotations

import argparse
import copy

import gymnasium as gym
import numpy as np
import torch

from rl_repara import QEnsemble, TanhGaussianPolicy


class Buffer:
    """A minimal circular replay buffer in NumPy."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.capacity, self.pos, self.size = capacity, 0, 0

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        i = self.pos
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, terminated
        self.pos, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> list[torch.Tensor]:
        idx = rng.integers(0, self.size, n)
        fields = (self.obs, self.action, self.reward, self.next_obs, self.terminated)
        return [torch.as_tensor(x[idx]) for x in fields]


def sac_update(batch, policy, critics, target_critics, log_alpha, opts, args, target_entropy):
    obs, action, reward, next_obs, terminated = batch
    pi_opt, q_opt, alpha_opt = opts
    alpha = log_alpha.exp().detach()

    # critics: soft Bellman target with the next action drawn from the current policy. The
    # losses work in the unit box (sample_unit): actions in [-1, 1] and their log-density
    # there, so the entropy bonus does not depend on the env's action units.
    with torch.no_grad():
        next_action, next_log_prob = policy.sample_unit(next_obs)
        next_q = target_critics(next_obs, next_action).min(dim=0).values  # [B]
        y = reward + args.gamma * (1.0 - terminated) * (next_q - alpha * next_log_prob)
    q_loss = (critics(obs, action) - y).square().mean(dim=1).sum()  # critics(...) is [N, B]
    q_opt.zero_grad()
    q_loss.backward()
    q_opt.step()

    # actor: the action is an rsample, so d(loss)/d(policy weights) flows through a and Q(s, a)
    new_action, log_prob = policy.sample_unit(obs)
    pi_loss = (alpha * log_prob - critics(obs, new_action).min(dim=0).values).mean()
    pi_opt.zero_grad()
    pi_loss.backward()
    pi_opt.step()

    # temperature: keep the entropy -log pi near target_entropy
    alpha_loss = -(log_alpha * (log_prob.detach() + target_entropy)).mean()
    alpha_opt.zero_grad()
    alpha_loss.backward()
    alpha_opt.step()

    with torch.no_grad():  # Polyak averaging of the target critics
        for p, tp in zip(critics.parameters(), target_critics.parameters()):
            tp.lerp_(p, args.tau)


def evaluate(policy: TanhGaussianPolicy, env: gym.Env, episodes: int, seed: int) -> float:
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))  # squashed mean
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main() -> None:
    p = argparse.ArgumentParser(description="Hand-written SAC with rl_repara's actor and critics.")
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-starts", type=int, default=1_000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--tau", type=float, default=0.005)
    p.add_argument("--eval-episodes", type=int, default=5)
    args = p.parse_args()

    torch.set_num_threads(1)  # small networks: one thread is the fastest on a CPU
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    env = gym.make(args.env)
    env.action_space.seed(args.seed)

    hidden = (args.hidden, args.hidden)
    policy = TanhGaussianPolicy.from_spaces(env.observation_space, env.action_space, hidden_sizes=hidden)
    critics = QEnsemble(policy.obs_dim, policy.act_dim, num_critics=2, hidden_sizes=hidden)
    target_critics = copy.deepcopy(critics).requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)  # alpha = 1 at the start
    opts = [
        torch.optim.Adam(params, lr=args.lr)
        for params in (policy.parameters(), critics.parameters(), [log_alpha])
    ]
    target_entropy = -float(policy.act_dim)
    buffer = Buffer(args.steps, policy.obs_dim, policy.act_dim)

    obs, _ = env.reset(seed=args.seed)
    episode_return, returns = 0.0, []
    for step in range(args.steps):
        with torch.no_grad():
            if step < args.learning_starts:
                action = env.action_space.sample()
                unit = policy.to_unit(torch.as_tensor(action)).numpy()
            else:
                unit_t = policy.sample_unit(torch.as_tensor(obs).unsqueeze(0))[0][0]
                unit, action = unit_t.numpy(), policy.to_env(unit_t).numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, unit, reward, next_obs, terminated)  # truncation still bootstraps
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            obs, episode_return = env.reset()[0], 0.0
            if len(returns) % 10 == 0:
                print(f"step {step + 1}: mean return of the last 10 episodes {np.mean(returns[-10:]):.1f}")
        if step >= args.learning_starts:
            batch = buffer.sample(args.batch_size, rng)
            sac_update(batch, policy, critics, target_critics, log_alpha, opts, args, target_entropy)

    eval_return = evaluate(policy, gym.make(args.env), args.eval_episodes, seed=args.seed + 10_000)
    print(f"eval return: {eval_return:.2f}")


if __name__ == "__main__":
    main()
