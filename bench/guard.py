"""The clinic guard against the readings by hand (issue 33's fifth lever): `unsupported_claims` as it is in the working tree and as it was at
each git revision given, scored on the same summaries.

- development: every distinct summary of the 40 development notes that the candidates benchmark kept, read by hand (nbs/data/levers_check.jsonl):
  the set the guard's checks were chosen on;
- test, first reading: the worked example's 20 summaries of the hand-written test notes, read before the guard was first revised
  (nbs/data/handwritten_check.jsonl), unchanged since;
- test, second reading: the 27 distinct test summaries of the candidates benchmark (nbs/data/levers_check.jsonl, split 'test');
- references: the 60 hand-written reference summaries and 1,800 of the generator's (all nine styles, seed 7), which should be flagged never.

A summary counts as flagged when the guard finds any claim; precision and recall are per summary, against "the reading finds a claim".
Run: `.venv/bin/python bench/guard.py [REV ...]` (default: afa4e9f, the guard before this lever). Writes bench/results/guard.json."""
import importlib.util, json, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
RESULTS = ROOT/'bench'/'results'

def guard_at(rev:str|None):
    "`unsupported_claims` from the working tree (rev None), or from `ftbook/tasks/clinic.py` as it was at git revision `rev`."
    if rev is None:
        from ftbook.tasks.clinic import unsupported_claims
        return unsupported_claims
    code = subprocess.run(['git', 'show', f'{rev}:ftbook/tasks/clinic.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp())/f'clinic_{rev}.py'
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(f'ftbook.tasks.{path.stem}', path)  # inside the package: its relative imports work
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module.unsupported_claims

def readings()->dict:
    "Each scored set: (note, summary, claims found by hand) per summary; the references with no claims."
    from ftbook.tasks.clinic_notes import ALL_STYLES, clinic_notes, handwritten_notes
    notes = {r['id']: r for split in ('dev', 'test') for r in handwritten_notes(split=split)}
    levers = [json.loads(l) for l in (ROOT/'nbs/data/levers_check.jsonl').read_text().splitlines()]
    first = [json.loads(l) for l in (ROOT/'nbs/data/handwritten_check.jsonl').read_text().splitlines()]
    read = lambda rows: [(notes[r['id']]['note'], r['output'], r['unsupported']) for r in rows]
    refs = list(notes.values()) + clinic_notes(1800, styles=ALL_STYLES, seed=7)
    return {'development': read(r for r in levers if r['split'] == 'dev'), 'test, first reading': read(first),
            'test, second reading': read(r for r in levers if r['split'] == 'test'), 'references': [(r['note'], r['summary'], []) for r in refs]}

def score(guard, rows:list)->dict:
    "Summaries, those with a claim by hand, those flagged, both; precision and recall of the flag."
    flagged = [bool(guard(note, summary)) for note, summary, _ in rows]
    claimed = [bool(claims) for *_, claims in rows]
    both = sum(f and c for f, c in zip(flagged, claimed))
    return dict(summaries=len(rows), with_claim=sum(claimed), flagged=sum(flagged), flagged_with_claim=both,
                precision=round(both / sum(flagged), 3) if any(flagged) and any(claimed) else None, recall=round(both / sum(claimed), 3) if any(claimed) else None)

def main(revs:list):
    sets = readings()
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    guards = {rev or 'now': (rev or f'{head} and the working tree', guard_at(rev)) for rev in revs + [None]}
    out = {name: dict(revision=rev, sets={s: score(guard, rows) for s, rows in sets.items()}) for name, (rev, guard) in guards.items()}
    (RESULTS/'guard.json').write_text(json.dumps(out, indent=1) + '\n')
    for name, r in out.items():
        print(name, *(f"{s}: flagged {v['flagged']} of {v['summaries']} (P {v['precision']}, R {v['recall']})" for s, v in r['sets'].items()), sep='\n  ')

if __name__ == '__main__': main(sys.argv[1:] or ['afa4e9f'])
