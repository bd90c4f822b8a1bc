"Importing ftbook changes nothing global: no warnings filters, no logger levels, no IPython display formatters, no environment variables."
import json, os, subprocess, sys

SCRIPT = r"""
import json, logging, os, sys, warnings
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()  # a running IPython, as in a notebook: where a display formatter would be installed
import accelerate, bitsandbytes, datasets, evaluate, ipywidgets, matplotlib, pandas, peft, torch, transformers, trl  # their own effects first
from transformers import Trainer, TrainerCallback
def state():
    loggers = {n: l.level for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)}
    return dict(filters=[repr(f) for f in warnings.filters], loggers=loggers, root=logging.getLogger().level,
                formatters={k: sorted(map(repr, f.type_printers)) + sorted(map(repr, f.deferred_printers))
                            for k, f in ip.display_formatter.formatters.items()},
                env=dict(os.environ), dtype=str(torch.get_default_dtype()), threads=torch.get_num_threads(),
                backend=matplotlib.get_backend(), pyplot='matplotlib.pyplot' in sys.modules)
before = state()
for m in sys.argv[1:]: __import__(m)
after = state()
changed = {k: (before[k], after[k]) for k in before if k != 'loggers' and before[k] != after[k]}
levels = {n: lv for n, lv in after['loggers'].items() if lv != before['loggers'].get(n, logging.NOTSET)}
print(json.dumps(dict(changed={k: str(v)[:2000] for k, v in changed.items()}, levels=levels)))
"""

import importlib, pkgutil
from pathlib import Path
import ftbook, ftbook.tasks

LIBRARY = sorted(f'ftbook.{m.name}' for m in pkgutil.iter_modules(ftbook.__path__) if not m.name.startswith('_') and m.name != 'tasks')
TASKS = sorted(f'ftbook.tasks.{m.name}' for m in pkgutil.iter_modules(ftbook.tasks.__path__))
MODULES = ['ftbook', *LIBRARY, *TASKS]

def probe(tmp_path, *modules)->dict:
    out = subprocess.run([sys.executable, '-c', SCRIPT, *modules], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])

def test_importing_ftbook_changes_no_global_state(tmp_path):
    assert probe(tmp_path, *MODULES) == dict(changed={}, levels={})

def test_the_probe_sees_each_kind_of_change(tmp_path):
    "A module that does what ftbook must not: the probe reports every change, so the test above can fail."
    (tmp_path/'meddler.py').write_text("import logging, warnings\nfrom IPython import get_ipython\nfrom matplotlib.figure import Figure\n"
                                       "logging.getLogger('bitsandbytes').setLevel(logging.ERROR)\nwarnings.filterwarnings('ignore', message='x')\n"
                                       "get_ipython().display_formatter.formatters['image/png'].for_type(Figure, lambda f: b'')\n")
    res = probe(tmp_path, 'meddler')
    assert set(res['changed']) == {'filters', 'formatters'} and res['levels'] == {'bitsandbytes': 40}, res

def test_public_api_is_small_and_documented():
    "The library's public names are `ftbook.__all__`: at most 60, each with a docstring, and exactly the union of its modules' `__all__`."
    mods = [importlib.import_module(m) for m in LIBRARY]
    public = {n for m in mods for n in m.__all__}
    assert set(ftbook.__all__) == public, (sorted(set(ftbook.__all__) - public), sorted(public - set(ftbook.__all__)))
    assert len(ftbook.__all__) <= 60, len(ftbook.__all__)
    undocumented = [n for n in ftbook.__all__ if callable(getattr(ftbook, n)) and not (getattr(ftbook, n).__doc__ or '').strip()]
    assert not undocumented, undocumented

def _imports(f:Path)->list:
    "(module, name) of each `from ... import` in a source file, relative modules made absolute."
    import ast
    pkg = '.'.join(f.relative_to(Path(ftbook.__file__).parents[1]).with_suffix('').parts[:-1])
    out = []
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.rsplit('.', node.level - 1)[0] if node.level else ''
            module = '.'.join(x for x in (base, node.module) if x)
            out += [(module, a.name) for a in node.names]
    return out

def library_files(): return [f for f in Path(ftbook.__file__).parent.glob('*.py') if f.name != '_modidx.py']
def task_files(): return list(Path(ftbook.tasks.__file__).parent.glob('*.py'))

def test_no_module_imports_a_private_name_of_another():
    bad = [f'{f.name}: from {m} import {n}' for f in library_files() + task_files() for m, n in _imports(f) if m.startswith('ftbook') and n.startswith('_')]
    assert not bad, bad

def test_the_library_never_imports_a_task():
    "The arrow points down: ftbook.tasks builds on the library, never the other way (the command line finds tasks through entry points)."
    bad = [f'{f.name}: from {m} import {n}' for f in library_files() for m, n in _imports(f) if m.startswith('ftbook.tasks') or (m, n) == ('ftbook', 'tasks')]
    assert not bad, bad

def test_the_layout_shows_library_and_tasks_apart():
    assert {'clinic', 'conditions', 'clinic_notes', 'worked_example', 'products', 'support', 'search', 'chain', 'choose'} == {m.split('.')[-1] for m in TASKS}
    assert not set(LIBRARY) & {f'ftbook.{t.split(".")[-1]}' for t in TASKS}
