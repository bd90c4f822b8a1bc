"""Where a whole training run spends its time (issue 22): one system of bench/training.py under cProfile, its cumulative seconds
in the Trainer's parts. Run it once per system, each in its own process:

    python bench/experiments/profile_run.py ftbook 64
    python bench/experiments/profile_run.py 'PEFT + Trainer, pad to longest' 64

Not part of `make bench` (cProfile slows Python-heavy code a little; the shares are what it is for)."""
import cProfile, json, pstats, sys
sys.path.insert(0, 'bench'); import training as B
name, n = sys.argv[1], int(sys.argv[2])
pr = cProfile.Profile(); pr.enable(); res = B.one_system(name, n); pr.disable()
st = pstats.Stats(pr).stats
def cum(file_part, func):
    "Cumulative seconds of the outermost calls of `func` defined in a file containing `file_part`."
    return max((v[3] for (f, l, fn), v in st.items() if fn == func and file_part in f), default=0.0)
parts = {'Trainer.train (the whole run)': cum('transformers/trainer.py', 'train'),
         'training_step (forward + backward)': cum('transformers/trainer.py', 'training_step'),
         'optimizer step': cum('torch/optim/optimizer.py', 'wrapper'),
         'evaluation': cum('transformers/trainer.py', 'evaluate'),
         'checkpoint saving': cum('transformers/trainer.py', '_save_checkpoint'),
         'callbacks (all events)': cum('transformers/trainer_callback.py', 'call_event'),
         'data loading and collation': cum('accelerate/data_loader.py', '__iter__'),
         'gradient clipping': cum('accelerate/accelerator.py', 'clip_grad_norm_')}
print(json.dumps(dict(system=name, tokens_per_s=res['tokens_per_s'], seconds=res['seconds'], parts=parts), indent=1))
