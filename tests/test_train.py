"ftbook.train as a user runs it: the `ftbook train` command killed and resumed, two DDP processes, and bad configs that fail before anything loads."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, yaml
from ftbook.data import PromptTemplate
from ftbook.quant import load_model, tiny_model
from ftbook.cli import main
from ftbook.train import DataSettings, ModelSettings, RunConfig, TrainSettings, complete_checkpoints

BIN = Path(sys.executable).parent

def write_config(d:Path, **train)->Path:
    "A tiny-model run over 48 arithmetic records, validated and checkpointed every 2 steps."
    recs = [dict(q=f'What is {i} plus {i}?', a=f'{i} plus {i} is {2*i}.') for i in range(48)]
    (d/'records.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    cfg = RunConfig(output_dir=str(d/'run'), model=ModelSettings(name=str(tiny_model('llama'))),
                    data=DataSettings(path=str(d/'records.jsonl'), template=PromptTemplate('{q}', '{a}'), max_len=64),
                    train=TrainSettings(**dict(dict(epochs=2, batch_size=4, eval_every=2, log_every=1, patience=None), **train)))
    return cfg.save(d/'config.yaml')

def ftbook(*args, **kw): return subprocess.run([str(BIN/'ftbook'), *args], capture_output=True, text=True, **kw)

def test_killed_run_resumes_from_a_complete_checkpoint(tmp_path):
    cfg = write_config(tmp_path)
    run = tmp_path/'run'
    proc = subprocess.Popen([str(BIN/'ftbook'), 'train', str(cfg)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while len(complete_checkpoints(run/'checkpoints')) < 2:
        assert proc.poll() is None and time.time() - t0 < 180, 'the run ended before it could be killed'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    killed_at = int(complete_checkpoints(run/'checkpoints')[-1].name.split('-')[1])
    assert not (run/'adapter').exists() and not (run/'result.json').exists()

    again = ftbook('train', str(cfg))  # without --resume: refused, nothing touched
    assert again.returncode != 0 and '--resume' in again.stderr
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
    cfg = write_config(tmp_path, epochs=1)
    out = subprocess.run([str(BIN/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                          '--mixed_precision', 'no', '--dynamo_backend', 'no', str(BIN/'ftbook'), 'train', str(cfg)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads((tmp_path/'run'/'result.json').read_text())
    assert res['world_size'] == 2 and res['ended'] == 'finished'
    assert (tmp_path/'run'/'adapter'/'adapter_model.safetensors').exists() and (tmp_path/'run'/'loss.png').exists()
    n_rows = 43  # 48 records, 10% held out for validation, one example per 64-token row
    assert res['steps'] == -(-n_rows // (2*4))  # each step takes batch_size rows on each of the 2 processes

BAD_CONFIGS = [  # (what the YAML says, what the error must name)
    ('train: {lr: -0.001}', 'train.lr = -0.001'),
    ('lora: {r: 0}', 'lora.r = 0'),
    ('train: {batch_size: 0}', 'train.batch_size = 0'),
    ('lora: {target_modules: [q_proj, attention]}', "['attention'] are not layers of this model"),
    ('train: {lerning_rate: 0.001}', "unknown setting 'lerning_rate'"),
    ('trian: {lr: 0.001}', "did you mean 'train'"),
    ('train: {epochs: many}', 'train.epochs'),
    ('data: {val: 1.5}', 'data.val = 1.5'),
    ('model: {quant: int3}', "model.quant = 'int3'"),
    ('train: [1, 2]', 'train must be a mapping'),
    ('train: {lr: 0.001', 'is not valid YAML'),
    ('data: {path: nowhere.jsonl}', 'nowhere.jsonl does not exist'),
    ('model: {name: no-such/model-anywhere}', 'neither a local folder nor reachable'),
]

@pytest.mark.parametrize('change,says', BAD_CONFIGS)
def test_bad_config_fails_clearly_before_anything_is_written(tmp_path, change, says):
    good = yaml.safe_load(write_config(tmp_path).read_text())
    try: patch = yaml.safe_load(change)
    except yaml.YAMLError: patch = None
    path = tmp_path/'bad.yaml'
    if patch is None: path.write_text(change)  # not YAML at all
    else:
        for section, value in patch.items():
            good[section] = {**good.get(section, {}), **value} if isinstance(value, dict) and section in good else value
        path.write_text(yaml.safe_dump(good))
    with pytest.raises(SystemExit) as exit:  # the `ftbook` command's function, in this process: no traceback, a message
        main(['train', str(path)])
    assert says in str(exit.value.code), exit.value.code
    assert not (tmp_path/'run').exists()
