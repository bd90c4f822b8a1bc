"""Reliability and safety of ftbook.training as a user runs it: `ftbook train` SIGKILLed again and again (some kills while a checkpoint
is being written) and resumed each time; no pickle loading of weights; no model code run unless asked; no place for a token in a config."""
import ast, json, os, random, re, shutil, string, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch, yaml
import ftbook
from ftbook.testing import tiny_model
from ftbook.checkpoints import COMPLETE, complete_checkpoints
from ftbook.training import decided_config
from ftbook.config import ConfigError, RunConfig

from conftest import write_run_config

BIN, PKG = Path(sys.executable).parent, Path(ftbook.__file__).parent
STEPS, SAVE_EVERY = 16, 2

def step_of(p:Path)->int: return int(p.name.split('-')[-1])

def load_adapter_plainly(folder:Path):
    "The adapter in `folder` loaded the way any PEFT user would: plain transformers base model, plain `PeftModel.from_pretrained`."
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    tensors = load_file(folder/'adapter_model.safetensors')
    assert sum('lora_A' in k for k in tensors) == 2*7 and all(t.isfinite().all() for t in tensors.values()), folder
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model('llama')), folder)
    assert sum('lora_A' in n for n,_ in model.named_parameters()) == 2*7
    return model

def check_run_folder(run:Path, cfg:Path, checked:dict):
    "Not corrupt: every checkpoint that claims to be complete loads and says the step it is named after; what exists of the rest parses."
    for ck in complete_checkpoints(run/'checkpoints'):
        key = (ck.name, (ck/COMPLETE).stat().st_mtime_ns)
        if key in checked: continue  # committed checkpoints never change
        assert json.loads((ck/COMPLETE).read_text())['step'] == step_of(ck)
        state = json.loads((ck/'trainer_state.json').read_text())
        assert state['global_step'] == step_of(ck), ck
        assert {'optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'adapter_config.json'} <= {f.name for f in ck.iterdir()}, ck
        load_adapter_plainly(ck)
        checked[key] = True
    if (run/'config.yaml').exists(): assert RunConfig.load(run/'config.yaml') == decided_config(RunConfig.load(cfg))  # automatic settings decided
    if (run/'adapter').exists(): load_adapter_plainly(run/'adapter')
    if (run/'result.json').exists(): json.loads((run/'result.json').read_text())

def incomplete(run:Path)->set:
    "Checkpoint folders without their commit marker (being written, or being deleted)."
    d = run/'checkpoints'
    return {p.name for p in d.glob('checkpoint-*') if p.is_dir() and not (p/COMPLETE).exists()} if d.exists() else set()

def newest_step(run:Path)->int:
    found = complete_checkpoints(run/'checkpoints') if (run/'checkpoints').exists() else []
    return step_of(found[-1]) if found else 0

# Each kill is aimed at a named point of the run (`ftbook.core.pause_point`): the process stops there and the test kills it, so every
# kill lands where it is aimed on a fast machine or a slow one, at any load. (point, what the run folder must hold after the kill)
SCHEDULE = [
    ('startup',               'loaded and about to train: nothing saved yet'),
    ('checkpoint-written:4',  'checkpoint-4 written, not committed: torn'),
    ('deleting:checkpoint-2', 'checkpoint-2 half deleted after checkpoint-6 was committed (its marker goes first)'),
    ('step:7',                'between two checkpoints'),
    ('checkpoint-written:12', 'checkpoint-12 torn'),
    ('committed:12',          'checkpoint-12 committed, old ones not yet deleted'),
    ('checkpoint-written:16', 'the last checkpoint torn'),
    ('committed:16',          'training done, the run not yet saved'),
    ('saving-adapter',        'the final adapter written into its temporary folder'),
    ('saving-results',        'adapter/ committed, history, plot and result.json not yet written'),
]

def test_sigkill_chain_resumes_from_complete_checkpoints_only(tmp_path, kill_at):
    "Ten SIGKILLs at named points (inside checkpoint writes, after commits, while deleting, during the final save), a resume after each."
    cfg, run = write_run_config(tmp_path, max_steps=STEPS), tmp_path/'run'
    env = dict(os.environ, TRANSFORMERS_VERBOSITY='info', PYTHONUNBUFFERED='1', TORCH_FORCE_WEIGHTS_ONLY_LOAD='1')
    checked, logs = {}, []
    for i, (point, _) in enumerate([*SCHEDULE, ('finish', '')]):
        start, stale = newest_step(run), incomplete(run)  # what a resume must continue from; what it must discard, never use
        log = tmp_path/f'session-{i}.log'; logs.append((log, start, stale))
        cmd = [str(BIN/'ftbook'), 'train', str(cfg), *(['--resume'] if i else [])]
        if point == 'finish':
            assert subprocess.run(cmd, stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env, timeout=600).returncode == 0, log.read_text()[-3000:]
            break
        kill_at(cmd, point, log=log, env=env)
        newest, torn = newest_step(run), incomplete(run)
        check_run_folder(run, cfg, checked)
        assert not (run/'result.json').exists()
        what, _, step = point.partition(':')
        if what == 'startup': assert newest == start and not torn
        if what == 'checkpoint-written': assert torn == {f'checkpoint-{step}'} and newest == int(step) - SAVE_EVERY, (torn, newest)
        if what == 'committed': assert newest == int(step) and not torn
        if what == 'step': assert newest == int(step) - 1 and not torn
        if what == 'deleting': assert torn == {step} and newest == 6, (torn, newest)  # the old one, never the newest
        if what == 'saving-adapter': assert newest == STEPS and not (run/'adapter').exists() and list(run.glob('.adapter.tmp-*'))
        if what == 'saving-results': load_adapter_plainly(run/'adapter'); assert not (run/'history.csv').exists()

    resumed = []  # the Trainer logs (at info level) the checkpoint it loads: it must be the newest complete one, never a torn one
    for log, start, stale in logs[1:]:
        loaded = [Path(p).name for p in re.findall(r'Loading model from (\S*checkpoint-\d+)\.', log.read_text())]
        if start < STEPS: assert loaded == ([f'checkpoint-{start}'] if start else []), (log.name, loaded, start)
        assert not set(loaded) & stale, (log.name, loaded, stale)
        resumed += loaded
    assert len(resumed) >= 6, resumed

    res = json.loads((run/'result.json').read_text())
    assert res['ended'] == 'max_steps' and res['steps'] == STEPS
    assert not incomplete(run), 'a torn checkpoint was left behind after the run finished'
    assert not list(run.glob('.*.tmp*')), 'a half-written temporary of a killed session was left in the run folder'
    last = json.loads((complete_checkpoints(run/'checkpoints')[-1]/'trainer_state.json').read_text())
    logged = [h['step'] for h in last['log_history'] if 'loss' in h]
    assert logged == list(range(1, STEPS + 1)), logged  # one training-loss entry per step: no gap, no duplicate across the resumes
    assert [h['step'] for h in last['log_history'] if 'eval_loss' in h] == list(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY))
    history = pd.read_csv(run/'history.csv')
    assert history.dropna(subset=['loss']).step.tolist() == list(range(1, STEPS + 1))
    assert {'adapter_model.safetensors', 'adapter_config.json', 'template.json', 'tokenizer.json'} <= {f.name for f in (run/'adapter').iterdir()}
    load_adapter_plainly(run/'adapter')

# --- Safety: no pickles, no remote code, no secrets ---------------------------------------------------------------------------

def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call): yield node, ast.unparse(node.func)

def test_no_pickle_loading_and_no_remote_code_by_default_in_the_source():
    "Static: ftbook never unpickles (torch.load without weights_only=True, pickle.load/loads) and never hard-codes trust_remote_code=True."
    problems = []
    for f in sorted(PKG.glob('*.py')):
        tree = ast.parse(f.read_text())
        for node, name in _calls(tree):
            kw = {k.arg: k.value for k in node.keywords}
            where = f'{f.name}:{node.lineno}'
            if name.endswith('torch.load') and not (isinstance(kw.get('weights_only'), ast.Constant) and kw['weights_only'].value is True):
                problems.append(f'{where}: torch.load without weights_only=True')
            if name in ('pickle.load', 'pickle.loads', 'pickle.Unpickler', 'dill.load', 'joblib.load'): problems.append(f'{where}: {name}')
            if 'trust_remote_code' in kw:  # only ever the user's setting passed through: a name or attribute, or the constant False
                v = kw['trust_remote_code']
                if not (isinstance(v, (ast.Name, ast.Attribute)) or (isinstance(v, ast.Constant) and v.value is False)):
                    problems.append(f'{where}: trust_remote_code={ast.unparse(v)}')
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, 'module', None) or '']
                if any(n in ('pickle', 'dill', 'cloudpickle', 'joblib') for n in names): problems.append(f'{f.name}:{node.lineno}: imports {names}')
    assert not problems, problems

WEIGHTS_ONLY_SCRIPT = """
import json, sys
from pathlib import Path
from ftbook.monitor import TrainingMonitor
from ftbook.training import train
from ftbook.ship import merge_adapter
from ftbook.config import RunConfig
from ftbook.system import load_system
cfg = RunConfig.load(sys.argv[1])
mon = TrainingMonitor()
mon.listeners.append(lambda snap: snap['step'] >= 2 and mon.stop())
first = train(cfg, monitor=mon, progress_bar=False)                 # stopped after step 2, checkpoint-2 written
done = train(cfg, resume=True, progress_bar=False)                  # optimizer.pt, scheduler.pt, rng_state.pth read back
merged = merge_adapter(done.adapter_dir)
systems = [load_system(done.adapter_dir), load_system(merged, quant=None)]
print(json.dumps(dict(first=first.ended, first_steps=first.steps, ended=done.ended, steps=done.steps, merged=str(merged),
                      systems=[type(s.model).__name__ for s in systems])))
"""

PICKLE_SUFFIXES = ('.bin', '.pt', '.pth', '.ckpt', '.pkl', '.pickle')
TRAINER_STATE_FILES = {'optimizer.pt', 'scheduler.pt', 'rng_state.pth'}  # the Trainer's own, in checkpoints only

def test_train_resume_and_load_under_forced_weights_only_loading(tmp_path):
    "With TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 torch refuses to unpickle objects: training, a resume, merging and loading must still work."
    cfg = write_run_config(tmp_path, max_steps=4)
    out = subprocess.run([sys.executable, '-c', WEIGHTS_ONLY_SCRIPT, str(cfg)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TORCH_FORCE_WEIGHTS_ONLY_LOAD='1'))
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert (res['first'], res['first_steps'], res['ended'], res['steps']) == ('stopped', 2, 'max_steps', 4), res
    run = tmp_path/'run'
    pickles = [p for p in run.rglob('*') if p.suffix in PICKLE_SUFFIXES]
    assert all(p.parent.parent == run/'checkpoints' and p.name in TRAINER_STATE_FILES for p in pickles), pickles
    for folder in (run/'adapter', run/'merged', *complete_checkpoints(run/'checkpoints')):  # every saved weight is safetensors
        assert any(folder.glob('*.safetensors')) and not any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir() if p.name not in TRAINER_STATE_FILES), folder
    # The Trainer's state files hold tensors and plain containers (rng_state also numpy arrays, which transformers allow-lists):
    from transformers.trainer_pt_utils import safe_globals
    ck = complete_checkpoints(run/'checkpoints')[-1]
    for name in ('optimizer.pt', 'scheduler.pt'): torch.load(ck/name, weights_only=True)
    with safe_globals(): torch.load(ck/'rng_state.pth', weights_only=True)
    assert not (ck/'training_args.bin').exists()  # the Trainer pickles its arguments there; ftbook deletes it before the commit marker

CUSTOM_CODE = """from pathlib import Path
Path({marker!r}).write_text('the model folder ran its own Python code')
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
class CustomConfig(LlamaConfig): model_type = 'llama'
class CustomForCausalLM(LlamaForCausalLM): config_class = CustomConfig
class CustomTokenizer(PreTrainedTokenizerFast): pass
"""

def remote_code_folder(d:Path, tokenizer:bool)->tuple:
    "The tiny model with an `auto_map` to custom_code.py (config and model, and the tokenizer if asked), which leaves a marker when imported."
    m, marker = d/'model', d/'MARKER'
    shutil.copytree(tiny_model('llama'), m)
    (m/'custom_code.py').write_text(CUSTOM_CODE.format(marker=str(marker)))
    c = json.loads((m/'config.json').read_text())
    (m/'config.json').write_text(json.dumps({**c, 'auto_map': {'AutoConfig': 'custom_code.CustomConfig', 'AutoModelForCausalLM': 'custom_code.CustomForCausalLM'}}))
    if tokenizer:
        t = json.loads((m/'tokenizer_config.json').read_text())
        (m/'tokenizer_config.json').write_text(json.dumps({**t, 'tokenizer_class': 'CustomTokenizer', 'auto_map': {'AutoTokenizer': [None, 'custom_code.CustomTokenizer']}}))
    return m, marker

REMOTE_SCRIPT = """
import json, sys
from ftbook.quant import load_model
from ftbook.model import load_tokenizer
from ftbook.adapters import linear_layer_names
from ftbook.system import load_system
path, trust = sys.argv[1], sys.argv[2] == 'trust'
out = {}
for name, f in [('linear_layer_names', lambda: linear_layer_names(path, trust)), ('load_tokenizer', lambda: load_tokenizer(path, trust_remote_code=trust)),
                ('load_model', lambda: load_model(path, trust_remote_code=trust)[0])] + ([] if trust else [('load_system', lambda: load_system(path).model)]):
    try: out[name] = type(f()).__name__
    except Exception as e: out[name] = f'{type(e).__name__}: {e}'
print(json.dumps(out))
"""

def test_model_code_runs_only_when_asked(tmp_path):
    "A model folder whose config (and tokenizer) map to its own Python file: ftbook's loaders never import it unless trust_remote_code=True."
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path/'modules'))  # where transformers copies remote code: not the user's cache
    script = lambda m, how: subprocess.run([sys.executable, '-c', REMOTE_SCRIPT, str(m), how], capture_output=True, text=True,
                                           timeout=300, env=env, stdin=subprocess.DEVNULL)
    model, marker = remote_code_folder(tmp_path/'config-only', tokenizer=False)
    both, marker2 = remote_code_folder(tmp_path/'with-tokenizer', tokenizer=True)
    for m, mk in [(model, marker), (both, marker2)]:
        out = script(m, 'default')
        assert out.returncode == 0, out.stderr[-3000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert not mk.exists(), (m, res)  # not imported: no prompt answered, no code run
        assert 'Do you wish to run the custom code' not in out.stdout + out.stderr, 'asked on the terminal instead of refusing'
        if m == model:  # the standard architecture of the same model_type is loaded instead
            assert res['load_model'] == 'LlamaForCausalLM' and res['load_tokenizer'] != '' and not res['load_tokenizer'].startswith(('ValueError', 'OSError'))
            assert isinstance(res['linear_layer_names'], str) and res['load_system'] == 'LlamaForCausalLM', res
        else:  # the tokenizer cannot be loaded without its code: a clear error that names the folder and the way to opt in
            assert res['load_tokenizer'].startswith('ValueError') and 'trust_remote_code' in res['load_tokenizer'] and str(both) in res['load_tokenizer'], res
    out = script(both, 'trust')  # the opt-in: model.trust_remote_code in the config, trust_remote_code=True in Python
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert marker2.exists() and res['load_model'] == 'CustomForCausalLM' and res['load_tokenizer'] == 'CustomTokenizer', res

def test_run_config_has_no_place_for_a_token(tmp_path):
    "A token put in the config is refused before anything runs, and the error does not repeat it."
    token = 'hf_' + ''.join(random.Random(1).choices(string.ascii_letters, k=30))
    good = yaml.safe_load(write_run_config(tmp_path).read_text())
    assert not re.search(r'token|secret|password|auth', json.dumps(list(good) + [k for s in good.values() if isinstance(s, dict) for k in s]))
    for section, key in [('model', 'token'), ('model', 'hf_token'), ('train', 'hub_token'), ('model', 'use_auth_token')]:
        bad = {**good, section: {**good[section], key: token}}
        (tmp_path/'bad.yaml').write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError, match=f"unknown setting '{key}'") as e: RunConfig.load(tmp_path/'bad.yaml')
        assert token not in str(e.value)
    with pytest.raises(ConfigError) as e: RunConfig.load(write_run_config(tmp_path)).override({'model.token': token})
    assert token not in str(e.value)
