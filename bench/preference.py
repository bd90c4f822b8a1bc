"""Preference tuning against invented facts, measured (issue 33, lever 3): the worked-example model summarizes generated training
notes; each summary the guard flags is paired with the note's reference summary (chosen) against the model's own (rejected); a DPO run
continues from the model's adapter (`train.method: dpo`, `lora.init_from`) on those pairs; the 40 hand-written development notes are
answered by both models, then the 20 test notes, once, greedy, as the worked example answers them.

Run: `.venv/bin/python bench/preference.py RUN [--notes N] [--epochs E] [--lr LR] [--beta B]` (RUN: a finished `ftbook demo` run).
Writes RUN-dpo/ (the flagged pairs in pairs.jsonl, the DPO run in run/) and bench/results/preference.json, with the development and
test summaries of each model in bench/results/preference-{dev,test}-{before,after}.jsonl for reading by hand. The settings are fixed
before any development note is answered (one setting, so the development notes choose nothing; they are reported beside the test)."""
import argparse, json, os, time
from pathlib import Path
import ftbook.quant  # before transformers: bitsandbytes then loads its CPU kernels quietly
from transformers.utils import logging as hf_logging
from review_loop import MAX_LEN, MAX_NEW, BATCH, save_report, summary_of

RESULTS = Path(__file__).parent/'results'

def save_summaries(result, notes:list, split:str):
    "Each model's summary of each note, with the guard's claims, for reading by hand."
    for name, key in [('before', 'before'), ('after DPO', 'after')]:
        ex = result.examples[result.examples.system == name]
        (RESULTS/f'preference-{split}-{key}.jsonl').write_text(''.join(json.dumps(dict(id=n['id'], note=n['note'], reference=n['summary'], summary=e.output,
                                                                                      claims=e.unsupported_claims)) + '\n' for n, e in zip(notes, ex.itertuples())))

def main(run:Path, n_notes:int, epochs:float, lr:float, beta:float):
    from ftbook import RunConfig, compare, load_system, preference_records, train
    from ftbook.core import machine_info
    from ftbook.tasks.clinic_notes import handwritten_notes
    from ftbook.tasks.worked_example import clinic_metrics, worked_example_data
    out = run.with_name(run.name + '-dpo'); out.mkdir(exist_ok=True)
    report = dict(run=str(run), notes=n_notes, epochs=epochs, lr=lr, beta=beta, max_len=MAX_LEN, max_new_tokens=MAX_NEW,
                  load_average_1min=[os.getloadavg()[0]], machine=machine_info())
    ask = dict(metrics=clinic_metrics(), source_field='note', with_perplexity=False, batch_size=BATCH)
    before = load_system(run/'adapter', name='before')
    pairs_file = out/'pairs.jsonl'
    if not pairs_file.exists():  # the model's answers on training notes, once: a second run of this script reuses the pairs
        notes = worked_example_data(n_train=600)['train'][:n_notes]  # notes `ftbook demo` trained on (same seed)
        t0 = time.perf_counter()
        seen = compare([before], notes, label='training notes', max_new_tokens=176, **ask)  # 176: as the demo answers generated notes
        pairs = preference_records(notes, seen.examples.output.tolist(), (seen.examples.review > 0).tolist(), 'summary')
        pairs_file.write_text(''.join(json.dumps(p) + '\n' for p in pairs))
        report['training_notes'] = dict(answered=len(notes), flagged=int((seen.examples.review > 0).sum()), pairs=len(pairs),
                                        seconds=time.perf_counter() - t0, scores=summary_of(seen)['before'])
    pairs = [json.loads(l) for l in pairs_file.read_text().splitlines()]
    print('pairs:', len(pairs), report.get('training_notes'), flush=True)

    config = RunConfig.load(run/'config.yaml').override({'output_dir': str(out/'run'), 'lora.init_from': str(run), 'data.max_len': MAX_LEN,
                                                         'data.val': 0.15, 'train.method': 'dpo', 'train.beta': beta,
                                                         'train.epochs': epochs, 'train.lr': lr, 'train.eval_every': 4, 'train.samples': 0})
    t0 = time.perf_counter()
    res = train(config, pairs, progress_bar=False)
    report['training'] = dict(seconds=time.perf_counter() - t0, pairs=len(pairs), steps=res.steps, ended=res.ended, best_val_loss=res.best_val_loss,
                              history=res.history[['step', 'loss', 'eval_loss']].to_dict('records'))
    print('training:', {k: v for k, v in report['training'].items() if k != 'history'}, flush=True)

    after = load_system(res.adapter_dir, name='after DPO')
    for split in ('dev', 'test'):
        notes = handwritten_notes(split=split)
        result = compare([before, after], notes, label=f'{split} notes', max_new_tokens=MAX_NEW, **ask)
        report[split] = summary_of(result)
        save_summaries(result, notes, split)
        print(split, json.dumps(report[split], indent=1), flush=True)
    save_report(report, 'preference')

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', type=Path, help='a finished run folder, as `ftbook demo` leaves it')
    p.add_argument('--notes', type=int, default=160, help='training notes the model answers, whose flagged summaries become pairs')
    p.add_argument('--epochs', type=float, default=2.0, help='passes over the pairs')
    p.add_argument('--lr', type=float, default=1e-4, help="peak learning rate (the default for dpo on a model this size: a tenth of supervised training's)")
    p.add_argument('--beta', type=float, default=0.1, help="DPO's beta")
    a = p.parse_args()
    main(a.run, a.notes, a.epochs, a.lr, a.beta)
