"""Re-run a notebook's fast cells and save their outputs; `#| slow` cells keep the outputs of their last real run.

    python tools/run_fast.py nbs/06_training.ipynb [...]                  # every fast cell gets its new output
    python tools/run_fast.py --changed-since 29feef3 nbs/*.ipynb          # only cells whose code changed since that commit
    python tools/run_fast.py --slow nbs/15_eval.ipynb                     # the slow cells too: the real runs, for minutes or hours

The cells run as `nbdev_test` runs them (same skipped flags, `#| eval: false` skipped, in the notebook's folder), so a notebook
that passes `make test` can be refreshed. With `--changed-since`, a cell whose source is the same as a cell of that commit (in any
notebook: cells moved between chapters keep their id) keeps its saved output; new and edited cells take the new one, and so do
reference entries (`show_doc`), whose output links to the module that defines the name."""
import argparse, json, re, subprocess, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory

SKIP = {'slow'}  # settings.ini's tst_flags: what nbdev_test leaves out

def directives(src:str)->dict:
    "The `#| ` directives at the top of a cell: name -> its words."
    top = re.match(r'(?:\s*#\|.*\n?)*', src).group(0)
    return {m.group(1): m.group(2).split() for l in top.splitlines() if (m := re.match(r'\s*#\|\s*([\w:-]+)\s*(.*)', l))}

def skipped(cell)->bool:
    "Whether nbdev_test leaves `cell` out."
    if cell.cell_type != 'code' or 'nbdev_export(' in cell.source: return True
    d = directives(cell.source)
    return d.get('eval:', [''])[0].lower() == 'false' or bool(SKIP & d.keys())

def sources_at(ref:str)->set:
    "The source of every code cell of every notebook in `nbs/` at git commit `ref`."
    names = subprocess.run(['git', 'ls-tree', '--name-only', ref, 'nbs/'], capture_output=True, text=True, check=True).stdout.split()
    out = set()
    for n in (n for n in names if n.endswith('.ipynb')):
        nb = json.loads(subprocess.run(['git', 'show', f'{ref}:{n}'], capture_output=True, text=True, check=True).stdout)
        out |= {''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'}
    return out

def run_fast(path:Path, keep:set|None=None)->int:
    "Run the fast cells of `path` and save their outputs (those in `keep` keep their old ones); the number of outputs changed."
    nb = read_nb(path)
    old = [(c.get('outputs'), c.get('execution_count')) for c in nb.cells]
    with working_directory(path.parent): CaptureShell(path).run_all(nb, exc_stop=True, preproc=skipped)
    changed = 0
    for c, (outs, count) in zip(nb.cells, old):
        if c.cell_type != 'code': continue
        if skipped(c) or (keep is not None and c.source in keep and not c.source.startswith('show_doc(')):  # a reference entry names its module
            c['outputs'], c['execution_count'] = outs, count
        else: changed += c.get('outputs') != outs
    write_nb(nb, path)
    return changed

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--changed-since', metavar='REF', help='keep the saved outputs of cells whose code is unchanged since this git commit')
    ap.add_argument('--slow', action='store_true', help='run the `#| slow` cells too (the real runs) and save their new outputs')
    args = ap.parse_args()
    if args.slow: SKIP.clear()
    if len(args.notebooks) > 1:  # each notebook in a fresh process, as nbdev_test runs them: no state shared between chapters
        since = (['--changed-since', args.changed_since] if args.changed_since else []) + (['--slow'] if args.slow else [])
        for p in args.notebooks: subprocess.run([sys.executable, __file__, str(p), *since], check=True)
        print('Now run nbdev_clean (make test checks that the notebooks are clean).')
    else:
        keep = sources_at(args.changed_since) if args.changed_since else None
        print(f'{args.notebooks[0]}: {run_fast(args.notebooks[0].resolve(), keep)} outputs changed', flush=True)
