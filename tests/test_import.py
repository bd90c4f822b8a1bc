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

MODULES = ['ftbook', 'ftbook.core', 'ftbook.quant', 'ftbook.data', 'ftbook.train', 'ftbook.eval', 'ftbook.clinic', 'ftbook.conditions', 'ftbook.examples', 'ftbook.worked_example',
           'ftbook.products', 'ftbook.choose', 'ftbook.chain', 'ftbook.search', 'ftbook.cli']

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
    "At most 60 names across the package are public (`__all__`), each function and class with a docstring; the rest is for ftbook's own use."
    import importlib, pkgutil, ftbook
    mods = [importlib.import_module(f'ftbook.{m.name}') for m in pkgutil.iter_modules(ftbook.__path__) if not m.name.startswith('_')]
    public = {f'{m.__name__}.{n}': getattr(m, n) for m in mods for n in m.__all__}
    assert len(public) <= 60, (len(public), sorted(public))
    undocumented = [name for name, obj in public.items() if callable(obj) and not (obj.__doc__ or '').strip()]
    assert not undocumented, undocumented

def test_no_module_imports_a_private_name_of_another():
    import ast, ftbook
    from pathlib import Path
    bad = [f'{f.name}: from {node.module} import {a.name}' for f in Path(ftbook.__file__).parent.glob('*.py') if f.name != '_modidx.py'
           for node in ast.walk(ast.parse(f.read_text())) if isinstance(node, ast.ImportFrom) and (node.level or 'ftbook' in (node.module or ''))
           for a in node.names if a.name.startswith('_')]
    assert not bad, bad
