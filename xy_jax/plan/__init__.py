"""Planning and timing: will a config fit a TPU slice, and how fast should it run (compiled for the
slice's topology on any machine: `train` for a training step, `serving` for generation, `rollout`
for PPO's decode in two layouts), and how fast does it run here (`timing`, for bench and gpu_check)."""
