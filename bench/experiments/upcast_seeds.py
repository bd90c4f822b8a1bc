"""Does training with the model's own 16-bit weights (ftbook since issue 22) change `make demo`'s quality, against the float32 upcast
PEFT's `prepare_model_for_kbit_training` made before? `make demo`'s data and settings (600 training notes, one epoch), training seeds x
{'upcast' (the old `add_lora`), 'none' (today's)}; only the fine-tuned model is evaluated (the base model's rows do not change).
The adapter-input casts that issue 22 also removed change no value, so they are not varied.

    python bench/experiments/upcast_seeds.py RUNS_DIR upcast-42 none-42 upcast-1 none-1 ...   # names: mode-seed

About 10 minutes a run on a 2-core CPU; results accumulate in bench/results/upcast_seeds.json (a name already there is skipped).
Not part of `make bench`. `train_s` is only comparable between runs made on a quiet machine."""
import json, sys, time, dataclasses
from pathlib import Path
import ftbook.training as T
from peft import prepare_model_for_kbit_training
from ftbook.tasks.worked_example import worked_example_data, worked_example_config, evaluate_clinic, TUNED_NAME, report_table
from ftbook.system import load_system
orig = T.add_lora
def add_lora_upcast(model, lora):
    T.unpack_for_training(model)
    return orig(prepare_model_for_kbit_training(model, use_gradient_checkpointing=False), lora)
out = Path(sys.argv[1]); res_file = Path(__file__).parents[1]/'results'/'upcast_seeds.json'
res = json.loads(res_file.read_text()) if res_file.exists() else {}
data = worked_example_data(600)
for name in sys.argv[2:]:
    if name in res: continue
    mode, seed = name.split('-'); seed = int(seed)
    T.add_lora = add_lora_upcast if mode == 'upcast' else orig
    cfg = worked_example_config(out/name)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
    t = time.time(); r = T.train(cfg, data['train'], data['val'], progress_bar=False); tt = time.time() - t
    results = evaluate_clinic([load_system(r.adapter_dir, name=TUNED_NAME)], data)
    tab = report_table(results)
    res[name] = dict(train_s=tt, best_val=r.best_val_loss, steps=r.steps, tps=r.tokens_per_second, table=tab.reset_index().to_dict('records'))
    res_file.write_text(json.dumps(res, indent=1, default=str)); print(name, tt, flush=True); print(tab.to_string(), flush=True)
