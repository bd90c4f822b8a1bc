"ftbook.training as a user runs it: the `ftbook train` command killed and resumed, two DDP processes, and the guards that need whole runs (gradient accumulation, early stopping, the inference prompt). Bad configs are in the bad-input corpus."
import json, re, subprocess, sys
from pathlib import Path
from dataclasses import replace
import pandas as pd
from ftbook.data import PromptTemplate, make_pairs
from ftbook.quant import load_model
from ftbook.testing import tiny_model
from ftbook.checkpoints import complete_checkpoints
from ftbook.training import train
from ftbook.config import DataSettings, ModelSettings, RunConfig

from conftest import write_run_config

BIN = Path(sys.executable).parent

def ftbook(*args, **kw): return subprocess.run([str(BIN/'ftbook'), *args], capture_output=True, text=True, **kw)

def test_killed_run_resumes_from_a_complete_checkpoint(tmp_path, kill_at):
    cfg = write_run_config(tmp_path)
    run = tmp_path/'run'
    kill_at([str(BIN/'ftbook'), 'train', str(cfg)], 'committed:4')
    killed_at = int(complete_checkpoints(run/'checkpoints')[-1].name.split('-')[1])
    assert killed_at == 4
    assert not (run/'adapter').exists() and not (run/'result.json').exists()

    before = {p.name: sorted(f.name for f in p.iterdir()) for p in complete_checkpoints(run/'checkpoints')}
    again = ftbook('train', str(cfg))  # without --resume: refused, nothing touched
    assert again.returncode != 0 and '--resume' in again.stderr
    assert {p.name: sorted(f.name for f in p.iterdir()) for p in complete_checkpoints(run/'checkpoints')} == before
    done = ftbook('train', str(cfg), '--resume')
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads((run/'result.json').read_text())
    history = pd.read_csv(run/'history.csv')
    steps = history.dropna(subset=['loss']).step.tolist()
    assert res['ended'] == 'finished' and steps == list(range(1, res['steps'] + 1)) and killed_at < res['steps']

    from peft import PeftModel  # the adapter is plain PEFT
    base, tok = load_model(tiny_model('llama'))
    model = PeftModel.from_pretrained(base, run/'adapter')
    assert sum('lora_A' in n for n,_ in model.named_parameters()) == 2*7

def test_two_ddp_processes(tmp_path):
    cfg = write_run_config(tmp_path, epochs=1)
    out = subprocess.run([str(BIN/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                          '--mixed_precision', 'no', '--dynamo_backend', 'no', str(BIN/'ftbook'), 'train', str(cfg)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path/'run'/'result.json').read_text())
    assert res['world_size'] == 2 and res['ended'] == 'finished'
    assert (tmp_path/'run'/'adapter'/'adapter_model.safetensors').exists() and (tmp_path/'run'/'loss.png').exists()
    n_rows = 43  # 48 records, 10% held out for validation, one example per 64-token row
    assert res['steps'] == -(-n_rows // (2*4))  # each step takes batch_size rows on each of the 2 processes

def tiny_config(out:Path, **changes)->RunConfig:
    "A float32 tiny-model run (no mixed precision, no dropout) for exact comparisons."
    cfg = RunConfig(output_dir=str(out), model=ModelSettings(name=str(tiny_model('llama')), dtype='float32'),
                    data=DataSettings(template=PromptTemplate('{q}', '{a}'), max_len=64, packing=False))
    return cfg.override({'lora.dropout': 0.0, 'train.gradient_checkpointing': False, 'train.log_every': 1, 'train.warmup': 0.0, **changes})

def arithmetic(n:int, start:int=0)->list:
    "Records of different lengths, so that micro-batches hold different numbers of loss tokens."
    return [dict(q=f'What is {i} plus {i}?', a=f'{i} plus {i} is {2*i}.' + ' Indeed.'*(i % 4)) for i in range(start, start+n)]

def test_gradient_accumulation_gives_the_same_loss_and_update(tmp_path):
    "8 rows in one step, or 2 x 4 accumulated (micro-batches with different numbers of loss tokens): the same loss and the same gradient."
    runs = [train(tiny_config(tmp_path/name, **{'train.batch_size': bs, 'train.grad_accum': acc, 'train.max_steps': 1, 'train.lr': 1e-2}),
                  arithmetic(8), arithmetic(4, start=100), progress_bar=False) for name, bs, acc in [('full', 8, 1), ('accumulated', 4, 2)]]
    logs = [json.loads((Path(r.output_dir)/'checkpoints'/'checkpoint-1'/'trainer_state.json').read_text())['log_history'][0] for r in runs]
    for key in ('loss', 'grad_norm'):  # a mean of per-micro-batch means would change both
        assert abs(logs[0][key] - logs[1][key]) < 1e-4 * logs[0][key], (key, logs)

def test_two_ddp_processes_give_the_loss_and_gradient_of_one(tmp_path):
    """One step over 8 rows: two DDP processes with 4 rows each (different numbers of loss tokens on each), or one process with all 8.
    The loss is normalised over the loss tokens of both processes together, so the logged loss and gradient norm are the same."""
    records = tmp_path/'records.jsonl'
    records.write_text(''.join(json.dumps(r) + '\n' for r in arithmetic(10)))  # val=0.2: 8 training rows, one step either way
    logs = {}
    for name, procs in [('one', 1), ('two', 2)]:
        tiny_config(tmp_path/name, **{'data.path': str(records), 'data.val': 0.2, 'train.batch_size': 8 // procs,
                                    'train.max_steps': 1, 'train.lr': 1e-2}).save(tmp_path/f'{name}.yaml')
        launch = [str(BIN/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                  '--mixed_precision', 'no', '--dynamo_backend', 'no'] if procs == 2 else []
        out = subprocess.run([*launch, str(BIN/'ftbook'), 'train', str(tmp_path/f'{name}.yaml')], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads((tmp_path/name/'result.json').read_text())['world_size'] == procs
        logs[name] = json.loads((tmp_path/name/'checkpoints'/'checkpoint-1'/'trainer_state.json').read_text())['log_history'][0]
    for key in ('loss', 'grad_norm'):  # a mean of per-process means, or a sum over processes, would change both
        assert abs(logs['one'][key] - logs['two'][key]) < 1e-4 * logs['one'][key], (key, logs)

def test_early_stopping_ends_a_run_built_to_overfit(tmp_path):
    "Eight training pairs, a high learning rate and 40 epochs: validation stops improving and the run ends early, keeping the best adapter."
    res = train(tiny_config(tmp_path/'run', **{'train.batch_size': 4, 'train.epochs': 40, 'train.lr': 5e-2, 'train.eval_every': 2, 'train.patience': 2}),
                arithmetic(8), arithmetic(8, start=100), progress_bar=False)
    assert res.ended == 'early stopping' and res.steps < 80 and res.best_step < res.steps
    ev = res.history.dropna(subset=['eval_loss'])
    assert (ev.step > res.best_step).sum() == 2 and ev.eval_loss[ev.step > res.best_step].min() >= res.best_val_loss

def test_inference_prompt_is_the_training_prompt(tmp_path):
    "The adapter folder carries the template and the tokenizer: the evaluation renders exactly the tokens training saw before each answer."
    from ftbook.data import prompt_text, tokenize_pairs
    template = PromptTemplate('{q}', '{a}', system='Answer in one sentence.')
    train_records = [dict(q=f'What is {i} plus {i}?', a=f'{2*i}.') for i in range(12)]
    cfg = tiny_config(tmp_path/'run', **{'train.max_steps': 2, 'train.eval_every': 1})
    res = train(replace(cfg, data=replace(cfg.data, template=template)), train_records[:8], train_records[8:], progress_bar=False)
    system = res.system()
    records = [dict(q=f'What is {i} plus {i}?', a=f'{2*i}.') for i in range(3)]
    prompts = system.prompts(records)
    _, tok = load_model(tiny_model('llama'))
    assert system.template == template and prompts == [prompt_text(template, tok, p) for p in make_pairs(records, template)]
    example = tokenize_pairs(make_pairs(records, template), tok, template)['examples'][0]
    n_prompt = example['labels'].index(next(l for l in example['labels'] if l != -100))
    assert system.tok(prompts[0], add_special_tokens=False)['input_ids'] == example['input_ids'][:n_prompt]

def test_samples_leave_the_run_unchanged(tmp_path):
    "Answering validation prompts at each validation (dropout on, so the random stream matters) ends with the same adapter, bit for bit, as not answering."
    from safetensors.torch import load_file
    import torch
    runs = {n: train(tiny_config(tmp_path/f'samples-{n}', **{'lora.dropout': 0.2, 'train.samples': n, 'train.epochs': 1, 'train.eval_every': 2, 'train.batch_size': 4}),
                     arithmetic(32), arithmetic(8, start=100), progress_bar=False) for n in (0, 3)}
    on, off = (load_file(Path(runs[n].adapter_dir)/'adapter_model.safetensors') for n in (3, 0))
    assert on.keys() == off.keys() and all(torch.equal(on[k], off[k]) for k in on)
    pd.testing.assert_frame_equal(runs[3].history, runs[0].history)
    samples = [json.loads(l) for l in (Path(runs[3].output_dir)/'samples.jsonl').read_text().splitlines()]
    evals = runs[3].history.dropna(subset=['eval_loss']).step.astype(int).tolist()
    assert len(evals) >= 3 and [s['step'] for s in samples] == [s for s in evals for _ in range(3)]
    assert not (Path(runs[0].output_dir)/'samples.jsonl').exists()

def test_tensorboard_logs_the_losses_of_the_history(tmp_path):
    "`train.report_to: [tensorboard]` writes event files in the run folder; read back with TensorBoard's own reader, they hold the run's losses, step for step, and its configuration."
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    res = train(tiny_config(tmp_path/'tracked', **{'train.report_to': ['tensorboard'], 'train.epochs': 1, 'train.eval_every': 2, 'train.batch_size': 4}),
                arithmetic(32), arithmetic(8, start=100), progress_bar=False)
    events = EventAccumulator(str(tmp_path/'tracked'/'tensorboard'), size_guidance={'scalars': 0, 'tensors': 0}).Reload()
    for tag, column in (('train/loss', 'loss'), ('eval/loss', 'eval_loss')):
        logged = res.history.dropna(subset=[column])
        assert len(logged) >= 3
        assert [e.step for e in events.Scalars(tag)] == logged.step.astype(int).tolist()
        assert np.array_equal(np.float32([e.value for e in events.Scalars(tag)]), logged[column].to_numpy(np.float32))
    args = json.loads(events.Tensors('args/text_summary')[0].tensor_proto.string_val[0])
    assert args['run_config'] == json.loads(json.dumps(RunConfig.load(tmp_path/'tracked'/'config.yaml').to_dict()))

def test_a_tracker_misspelt_or_not_installed_is_refused_before_loading(tmp_path):
    "A tracker transformers does not know, or whose package is missing, is refused with what to do, and nothing is written."
    import importlib.util, pytest
    from ftbook.config import ConfigError
    with pytest.raises(ConfigError, match=r"no tracker \['tensorbord'\]"):
        train(tiny_config(tmp_path/'run', **{'train.report_to': ['tensorbord']}), arithmetic(8), arithmetic(4, start=100), progress_bar=False)
    assert not (tmp_path/'run').exists()
    missing = next((n for n in ('mlflow', 'wandb', 'neptune', 'clearml') if importlib.util.find_spec(n) is None), None)
    if missing is None: pytest.skip('every tracker tried is installed here')
    with pytest.raises(ImportError, match=f'pip install {missing}'):
        train(tiny_config(tmp_path/'run', **{'train.report_to': [missing]}), arithmetic(8), arithmetic(4, start=100), progress_bar=False)
    assert not (tmp_path/'run').exists()

def test_a_log_file_gets_a_line_per_validation_and_plain_warnings(tmp_path):
    "`ftbook train` into a file (no terminal: no bar drawn) prints a line per validation and ftbook's warnings as one line each: no raw log dictionaries, no source lines."
    cfg = write_run_config(tmp_path, epochs=1)
    with open(tmp_path/'records.jsonl', 'a') as f: f.write(json.dumps(dict(q='What is ' + 'very '*80 + 'long?', a='Long.')) + '\n')
    out = ftbook('train', str(cfg))
    assert out.returncode == 0, out.stderr[-3000:]
    shown = out.stdout + out.stderr
    validations = [l for l in shown.splitlines() if ': validation loss ' in l]
    assert len(validations) == len(pd.read_csv(tmp_path/'run'/'history.csv').eval_loss.dropna())
    assert "{'loss'" not in shown and "{'eval_loss'" not in shown and 'UserWarning' not in shown and 'warnings.warn' not in shown
    assert any(l.startswith('warning: 1 of ') and 'max_len=64' in l for l in shown.splitlines())

def test_a_terminal_shows_one_training_bar_and_a_bar_per_system(tmp_path):
    "In a terminal: one training bar with the latest losses in it, then `ftbook eval` draws a bar per data file and system, counting answers."
    from conftest import in_terminal
    cfg = write_run_config(tmp_path, epochs=1)
    rc, shown = in_terminal([str(BIN/'ftbook'), 'train', str(cfg)])
    assert rc == 0, shown[-3000:]
    bars = [l for l in shown.replace('\r', '\n').splitlines() if re.match(r'[^:\n]+: +\d+%', l)]
    assert {l.split(':')[0] for l in bars} == {'training'}  # one bar: no evaluation bars, no bar for the samples
    assert 'loss=' in bars[-1] and 'val_loss=' in bars[-1] and '100%' in bars[-1]
    assert "{'loss'" not in shown and "{'eval_loss'" not in shown
    (tmp_path/'base.txt').write_text('Answer the question in one sentence.')
    rc, shown = in_terminal([str(BIN/'ftbook'), 'eval', '--adapter', str(tmp_path/'run'/'adapter'), '--data', str(tmp_path/'records.jsonl'),
                             '--limit', '6', '--max-new-tokens', '4', '--baseline', str(tmp_path/'base.txt')])
    assert rc == 0, shown[-3000:]
    lines = shown.replace('\r', '\n').splitlines()
    for system in ('base model + your prompt', 'fine-tuned'):
        assert any(l.startswith(f'records.jsonl: {system}') and '6/6' in l and 'answer' in l for l in lines), (system, shown[-2000:])

def test_a_run_continues_from_another_runs_adapter(tmp_path):
    """`lora.init_from`: the second run's adapters start from the first run's weights. One step at a learning rate too small to move
    them leaves the second adapter equal to the first; from new adapters (B at zero) it would be far from it."""
    from safetensors.torch import load_file
    first = train(tiny_config(tmp_path/'first', **{'train.max_steps': 4, 'train.lr': 5e-2}), arithmetic(8), arithmetic(4, start=100), progress_bar=False)
    written = (Path(first.adapter_dir)/'adapter_model.safetensors').read_bytes()
    second = train(tiny_config(tmp_path/'second', **{'train.max_steps': 1, 'train.lr': 1e-12, 'lora.init_from': first.output_dir}),
                   arithmetic(8, start=200), arithmetic(4, start=100), progress_bar=False)
    was, now = (load_file(Path(r.adapter_dir)/'adapter_model.safetensors') for r in (first, second))
    assert was.keys() == now.keys() and max((was[k] - now[k]).abs().max().item() for k in was) < 1e-6
    assert max(v.abs().max().item() for k, v in was.items() if 'lora_B' in k) > 1e-3  # the first run moved its B matrices away from zero
    assert RunConfig.load(Path(second.output_dir)/'config.yaml').lora.init_from == first.output_dir  # the run records where it started
    assert (Path(first.adapter_dir)/'adapter_model.safetensors').read_bytes() == written  # the first run is only read

def test_a_preference_run_killed_resumes_and_saves_only_its_adapter(tmp_path, kill_at):
    """`train.method: dpo` from the command line, on records with a chosen and a rejected answer: killed after a committed checkpoint,
    resumed, and finished with the loss starting at log 2 (the model is its own reference), falling, and the adapter saved without the reference."""
    import math
    from conftest import ARITHMETIC
    cfg = write_run_config(tmp_path, method='dpo', lr=1e-2)
    (tmp_path/'records.jsonl').write_text(''.join(json.dumps(dict(q=r['q'], chosen=r['a'], rejected=r['a'] + ' Or perhaps not.')) + '\n' for r in ARITHMETIC))
    run = tmp_path/'run'
    kill_at([str(BIN/'ftbook'), 'train', str(cfg)], 'committed:4')
    assert int(complete_checkpoints(run/'checkpoints')[-1].name.split('-')[1]) == 4 and not (run/'adapter').exists()
    done = ftbook('train', str(cfg), '--resume')
    assert done.returncode == 0, done.stderr[-3000:]
    res, history = json.loads((run/'result.json').read_text()), pd.read_csv(run/'history.csv')
    losses = history.dropna(subset=['loss'])
    assert res['ended'] == 'finished' and losses.step.tolist() == list(range(1, res['steps'] + 1))
    assert abs(losses.loss.iloc[0] - math.log(2)) < 1e-3 and res['best_val_loss'] < math.log(2) - 0.05, (losses.loss.tolist()[:3], res['best_val_loss'])
    assert [p.name for p in (run/'adapter').iterdir() if p.is_dir()] == []  # the frozen reference is not part of the adapter
    assert RunConfig.load(run/'config.yaml').train.method == 'dpo'

def test_a_preference_run_without_trl_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import pytest
    monkeypatch.setitem(sys.modules, 'trl', None)  # as where TRL is not installed: `import trl` raises ImportError
    config = RunConfig.load(write_run_config(tmp_path, method='dpo'))
    with pytest.raises(ImportError, match=r"pip install 'ftbook\[preference\]'"): train(config)
    assert not (tmp_path/'run').exists()
