"""The review loop, measured (issue 33): a simulated reviewer corrects the worked-example model's flagged summaries of the 40
hand-written development notes, writing each note's reference summary as the correction; a second run continues from the first run's
adapter (`lora.init_from`) on those corrections plus some of the original training notes; the 20 hand-written test notes are answered
by both models, greedy, as the worked example answers them.

Run: `.venv/bin/python bench/review_loop.py RUN [--originals N] [--epochs E] [--lr LR]` (RUN: a finished `ftbook demo` run). Writes
RUN-review/ (reviews.jsonl, the continued run in run/) and bench/results/review_loop.json, with the test summaries of each model in
bench/results/review_loop-test-{before,after}.jsonl for reading by hand. Settings are fixed before the test notes are answered: the
development notes are the corrections, so nothing is left to choose them on; the test notes are answered once."""
import argparse, json, os, random, time
from pathlib import Path
import ftbook.quant  # before transformers: bitsandbytes then loads its CPU kernels quietly
from transformers.utils import logging as hf_logging

RESULTS = Path(__file__).parent/'results'
MAX_NEW, BATCH = 320, 4  # as bench/candidates.py: the development set's longest reference summary is 280 tokens
MAX_LEN = 1024           # a hand-written note and its summary run to about 900 tokens, where the generator's stay under 460

def summary_of(result)->dict:
    "The clinic metrics of each system, and the guard's flags and claims."
    cols = ['format', 'fact_recall', 'medication_recall', 'unsupported', 'rouge']
    ex = result.examples
    return {s: dict(**result.summary.loc[s, cols].round(4).to_dict(), flagged=int(ex[ex.system == s].review.sum()),
                    claims=int(ex[ex.system == s].unsupported.sum())) for s in result.summary.index}

def main(run:Path, originals:int, epochs:float, lr:float):
    from ftbook import RunConfig, Reviews, compare, load_system, review_queue, reviewed_records, train
    from ftbook.core import machine_info
    from ftbook.tasks.clinic_notes import handwritten_notes
    from ftbook.tasks.worked_example import clinic_metrics, worked_example_data
    out = run.with_name(run.name + '-review'); out.mkdir(exist_ok=True)
    report = dict(run=str(run), originals=originals, epochs=epochs, lr=lr, max_len=MAX_LEN, max_new_tokens=MAX_NEW,
                  load_average_1min=[os.getloadavg()[0]], machine=machine_info())
    ask = dict(metrics=clinic_metrics(), source_field='note', with_perplexity=False, batch_size=BATCH, max_new_tokens=MAX_NEW)
    before = load_system(run/'adapter', name='before review')
    reviews = Reviews(out/'reviews.jsonl', reviewer='simulated: the reference summary')
    if not len(reviews):  # the reviewer's work, once: a second run of this script reuses the saved reviews
        dev = compare([before], handwritten_notes(split='dev'), label='development notes', **ask)
        for item in review_queue(dev).to_dict('records'): reviews.save(item, corrected=item['reference'])
        report['development_scores'] = summary_of(dev)['before review']
    corrections = reviewed_records(reviews, 'note', 'summary')
    report['development'] = dict(notes=len(handwritten_notes(split='dev')), flagged=len(reviews), corrections=len(corrections))
    print('development:', report['development'], flush=True)

    data = worked_example_data(n_train=600)  # the notes `ftbook demo` trained on (same seed)
    kept = random.Random(0).sample(data['train'], originals)
    config = RunConfig.load(run/'config.yaml').override({'output_dir': str(out/'run'), 'lora.init_from': str(run), 'data.max_len': MAX_LEN,
                                                         'train.epochs': epochs, 'train.lr': lr})
    t0 = time.perf_counter()
    res = train(config, corrections + kept, data['val'], progress_bar=False)
    report['training'] = dict(seconds=time.perf_counter() - t0, rows=len(corrections) + len(kept), steps=res.steps, ended=res.ended,
                              best_val_loss=res.best_val_loss, first_run_best_val_loss=json.loads((run/'result.json').read_text())['best_val_loss'])
    print('training:', report['training'], flush=True)

    notes = handwritten_notes(split='test')
    test = compare([before, load_system(res.adapter_dir, name='after review')], notes, label='test notes', **ask)
    report['test'] = summary_of(test)
    for name, key in [('before review', 'before'), ('after review', 'after')]:
        ex = test.examples[test.examples.system == name]
        (RESULTS/f'review_loop-test-{key}.jsonl').write_text(''.join(json.dumps(dict(id=n['id'], note=n['note'], reference=n['summary'], summary=e.output,
                                                                                     claims=e.unsupported_claims)) + '\n' for n, e in zip(notes, ex.itertuples())))
    print('test:', json.dumps(report['test'], indent=1))
    save_report(report, 'review_loop')

def save_report(report:dict, name:str):
    "Write bench/results/NAME.json, with the load average at the end beside the one at the start, and print both and the machine."
    report['load_average_1min'].append(os.getloadavg()[0])
    (RESULTS/f'{name}.json').write_text(json.dumps(report, indent=2, default=str))
    print(f"1-min load average {report['load_average_1min'][0]:.1f} before, {report['load_average_1min'][1]:.1f} after; "
          f"{report['machine']['cpu']}, {report['machine']['dtype']}")

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', type=Path, help='a finished run folder, as `ftbook demo` leaves it')
    p.add_argument('--originals', type=int, default=32, help="original training notes beside the corrections, so the model keeps what it knew")
    p.add_argument('--epochs', type=float, default=2.0, help='passes over corrections and originals')
    p.add_argument('--lr', type=float, default=5e-4, help='peak learning rate of the continued run (the first run used 1e-3)')
    a = p.parse_args()
    main(a.run, a.originals, a.epochs, a.lr)
