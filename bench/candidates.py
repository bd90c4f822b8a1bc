"""Choosing among candidates (issue 33's second lever), on the 40 hand-written development notes: the fine-tuned worked-example model
answers each note with 1, 4 and 8 candidates (the greedy answer and sampled ones, `SAMPLE_TEMPERATURE`), and `clinic_score` (the guard)
keeps the best; per setting, the clinic metrics, the guard's flags, and the seconds per note.

Run: `.venv/bin/python bench/candidates.py [RUN [N ...]] [--name NAME]` (default: the newest `runs/*/` holding an `adapter/`, as `make demo` leaves it;
N: the candidate counts, default 1 4 8). Writes bench/results/candidates.json and, per setting, the chosen summaries beside their
notes and references in bench/results/candidates-dev-N.jsonl, for reading by hand. Then, once, for the count chosen on the development
notes: `.venv/bin/python bench/candidates.py RUN --test N` scores the 20 test notes with 1 and N candidates (candidates-test-1.jsonl,
candidates-test-N.jsonl, and a `test` entry in candidates.json). `--name NAME` writes NAME.json and NAME-SPLIT-N.jsonl instead, so a run
with another version of the guard (the score) sits beside the first. The seconds are ratios of one run on one machine (the load average
is recorded)."""
import argparse, json, os, sys, time
from pathlib import Path
import ftbook.quant  # before transformers: bitsandbytes then loads its CPU kernels quietly
from transformers.utils import logging as hf_logging

RESULTS = Path(__file__).parent/'results'
MAX_NEW = 320  # the development set's longest reference summary is 280 tokens
BATCH = 4      # notes per batch; each brings all its candidates

def newest_run()->Path:
    runs = sorted(Path('runs').glob('*/adapter/adapter_config.json'), key=lambda p: p.stat().st_mtime)
    if not runs: print("bench/candidates.py skipped: no run with an adapter/ in runs/. Run `make demo` first, or pass a run folder."); sys.exit()
    return runs[-1].parent.parent

def run(adapter:Path, counts:list, split:str='dev', name:str='candidates')->dict:
    "Every candidate count on the hand-written notes of `split`, the fine-tuned system only."
    from ftbook.core import machine_info
    from ftbook.eval import compare
    from ftbook.system import SAMPLE_TEMPERATURE, load_system
    from ftbook.tasks.clinic import clinic_score
    from ftbook.tasks.clinic_notes import handwritten_notes
    from ftbook.tasks.worked_example import TUNED_NAME, clinic_metrics
    notes, system = handwritten_notes(split=split), load_system(adapter, name=TUNED_NAME)
    out = dict(run=str(adapter.parent), notes=len(notes), split=split, max_new_tokens=MAX_NEW, batch=BATCH, sample_temperature=SAMPLE_TEMPERATURE,
               load_average_1min=[os.getloadavg()[0]], machine=machine_info(), settings={})
    for n in counts:
        t0 = time.perf_counter()
        r = compare([system], notes, clinic_metrics(), source_field='note', with_perplexity=False, label=f'{split}, {n} candidates',
                    batch_size=BATCH, max_new_tokens=MAX_NEW, candidates=n, score=clinic_score)
        seconds, ex = time.perf_counter() - t0, r.examples
        out['settings'][n] = dict(seconds_per_note=seconds/len(notes), **r.summary[['format', 'fact_recall', 'medication_recall', 'unsupported', 'rouge']].iloc[0].round(4).to_dict(),
                                  flagged=int(ex.review.sum()), claims=int(ex.unsupported.sum()), not_first=int((ex.candidate > 0).sum()), stopped=float(ex.stopped.mean()))
        rows = [dict(id=note['id'], note=note['note'], reference=note['summary'], summary=e.output, candidate=int(e.candidate),
                     candidate_scores=e.candidate_scores, claims=e.unsupported_claims) for note, e in zip(notes, ex.itertuples())]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS/f'{name}-{split}-{n}.jsonl').write_text(''.join(json.dumps(x, default=list) + '\n' for x in rows))
        print(f"  {n} candidates: {out['settings'][n]}", flush=True)
    out['load_average_1min'].append(os.getloadavg()[0])
    return out

def main(run_dir:Path, counts:list, test:int|None, name:str):
    "Score `counts` on the development notes (or, with `test`, 1 and `test` candidates on the test notes) into bench/results/{name}.json."
    path = RESULTS/f'{name}.json'
    if test:  # once, for the count chosen on the development notes
        res = json.loads(path.read_text()) | dict(test=run(run_dir/'adapter', [1, test], split='test', name=name))
        path.write_text(json.dumps(res, indent=2, default=str)); res = res['test']
    else:
        res = run(run_dir/'adapter', counts, name=name)
        old = json.loads(path.read_text()) if path.exists() else {}
        kept = {'test': old['test']} if old.get('test', {}).get('run') == res['run'] else {}  # the test scores of the same run stay
        path.write_text(json.dumps(res | kept, indent=2, default=str))
    print(f"Candidates on the {res['notes']} {res['split']} notes, {res['machine']['dtype']} on {res['machine']['cpu_threads']} threads of "
          f"{res['machine']['cpu']}; 1-min load average {res['load_average_1min'][0]:.1f} before, {res['load_average_1min'][1]:.1f} after")

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', nargs='?', type=Path, help='a run folder holding adapter/ (default: the newest in runs/)')
    p.add_argument('counts', nargs='*', type=int, default=[1, 4, 8], help='candidate counts on the development notes')
    p.add_argument('--test', type=int, help='score the test notes once, with 1 and this many candidates')
    p.add_argument('--name', default='candidates', help="the results' name: bench/results/NAME.json and NAME-SPLIT-N.jsonl (a name per guard version)")
    a = p.parse_args()
    main(a.run or newest_run(), a.counts, a.test, a.name)
