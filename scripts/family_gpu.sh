#!/usr/bin/env bash
# SAC, CrossQ and TQC side by side on one GPU machine: HalfCheetah-v5 and Hopper-v5, 3 seeds
# each, every run in its own process (1 torch thread), all at once. Usage:
#   bash scripts/family_gpu.sh OUT_DIR STEPS
set -u
out=${1:?out dir}; steps=${2:-12000}
crossq='{"learning_starts":2000,"target_network":false,"critic_norm":"batchrenorm","actor_norm":"batchrenorm","policy_delay":3,"adam_beta1":0.5,"lr":1e-3,"critic_hidden_sizes":[2048,2048]}'
tqc='{"learning_starts":2000,"num_critics":5,"num_quantiles":25,"drop_quantiles":2,"actor_q":"mean","critic_hidden_sizes":[512,512,512]}'
sac='{"learning_starts":2000}'
for env in HalfCheetah-v5 Hopper-v5; do
  for algo in sac crossq tqc; do
    python3 scripts/learning_check.py --env "$env" --steps "$steps" --eval-every 4000 --eval-episodes 5 \
      --workers 3 --agent "${!algo}" --runs /tmp/family --out "$out/$env-$algo.json" > "$out/$env-$algo.log" 2>&1 &
  done
done
wait
