"""Evaluation speed: ftbook's `evaluate_clinic` (the `compare` behind `evaluate_run`, `ftbook eval` and `make demo`) against the
generation loop a user would write with plain transformers + PEFT, on the worked example's four test sets (140 notes): the base model
asked with the detailed prompt, and the fine-tuned adapter with its short prompt, 280 answers in all.

Run: `.venv/bin/python bench/evaluation.py [RUN [LIMIT]]` (default: the newest `runs/*/` holding an `adapter/`, as `make demo` leaves
it; LIMIT: the first notes of each test set only, for a quick try; the results file is written for the whole sets only).

Both sides get the same prompt texts (rendered once by the run's template and the tokenizer's chat template), the same model files,
adapter and tokenizer, greedy decoding, batches of 16 and at most 176 new tokens, and each runs in a process of its own. The plain loop
is what the transformers and PEFT documentation show: the base model loaded in NF4 4-bit, `PeftModel.from_pretrained` for the fine-tuned
one, prompts in file order, left-padded batches, `model.generate`. ftbook generates from the 4-bit weights dequantized with the adapter
merged in, sorts prompts by length, and computes the prefix all prompts share once.

Per side: answers per second and new tokens per second of generation (model loading apart, also reported), and how many of the 280
answers are identical to the other side's, with the clinic's metrics of each side's answers. Writes bench/results/evaluation.json.
The figures are ratios measured in one run on one machine: run it on a quiet machine (the load average is recorded)."""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import torch
import ftbook.quant  # before transformers: bitsandbytes then loads its CPU kernels quietly
from transformers.utils import logging as hf_logging

BATCH, MAX_NEW = 16, 176
SIDES = ['ftbook', 'transformers + PEFT loop']
RESULTS = Path(__file__).parent/'results'

LIMIT = None  # notes per test set (None: all)

def test_sets()->tuple:
    "The worked example's four test sets (the same notes whatever the training size) and the detailed prompt's example."
    from ftbook.tasks.worked_example import worked_example_data
    data = worked_example_data(n_train=1, n_val=1)
    return {k: v[:LIMIT] for k, v in data.items() if k not in ('train', 'val')}, data['train'][0]

def ftbook_side(adapter:Path)->dict:
    "ftbook's evaluation, as `make demo` runs it."
    from ftbook.tasks.worked_example import clinic_systems, evaluate_clinic
    sets, example = test_sets()
    t0 = time.perf_counter()
    systems = clinic_systems(adapter, example)
    t1 = time.perf_counter()
    results = evaluate_clinic(systems, sets, batch_size=BATCH, max_new_tokens=MAX_NEW)
    t2 = time.perf_counter()
    answers = {f'{name}|{e.system}|{e.example}': dict(text=e.output, new_tokens=int(e.new_tokens)) for name, r in results.items() for e in r.examples.itertuples()}
    return dict(load_seconds=t1 - t0, generate_seconds=t2 - t1, answers=answers)

def plain_side(adapter:Path)->dict:
    "The loop a user writes from the transformers and PEFT docs: 4-bit base, PeftModel on top, batches in file order, left padding."
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from ftbook.core import pick_dtype, pick_device
    from ftbook.system import System, adapter_base, read_template
    from ftbook.tasks.worked_example import BASE_NAME, TUNED_NAME
    from ftbook.tasks.clinic import detailed_template
    sets, example = test_sets()
    dtype = pick_dtype(pick_device())
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(adapter); tok.padding_side = 'left'
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    load = lambda: AutoModelForCausalLM.from_pretrained(adapter_base(adapter), quantization_config=quant, dtype=dtype, device_map='cpu').eval()
    models = {BASE_NAME: (load(), detailed_template(example)), TUNED_NAME: (PeftModel.from_pretrained(load(), adapter).eval(), read_template(adapter))}
    t1 = time.perf_counter()
    answers = {}
    for system, (model, template) in models.items():
        for name, records in sets.items():
            prompts = System(system, None, tok, template).prompts(records)  # the same prompt texts as ftbook's
            for b in range(0, len(prompts), BATCH):
                enc = tok(prompts[b:b+BATCH], return_tensors='pt', padding=True, add_special_tokens=False)
                with torch.inference_mode():
                    out = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                for i, row in enumerate(out[:, enc['input_ids'].shape[1]:].tolist()):
                    n = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
                    answers[f'{name}|{system}|{b + i}'] = dict(text=tok.decode(row[:n], skip_special_tokens=True).strip(), new_tokens=n)
    return dict(load_seconds=t1 - t0, generate_seconds=time.perf_counter() - t1, answers=answers)

def clinic_scores(answers:dict)->dict:
    "The clinic's headline metrics of a side's answers, per system, over all four test sets."
    from ftbook.eval import score_outputs
    from ftbook.tasks.worked_example import clinic_metrics
    sets, _ = test_sets()
    out = {}
    for system in sorted({k.split('|')[1] for k in answers}):
        keys = [(name, i) for name, recs in sets.items() for i in range(len(recs))]
        outputs = [answers[f'{name}|{system}|{i}']['text'] for name, i in keys]
        scores = score_outputs(clinic_metrics(), outputs, [sets[n][i]['summary'] for n, i in keys], [sets[n][i]['note'] for n, i in keys])
        out[system] = scores[['format', 'fact_recall', 'medication_recall', 'unsupported']].mean().round(4).to_dict()
    return out

def newest_run()->Path:
    runs = sorted(Path('runs').glob('*/adapter/adapter_config.json'), key=lambda p: p.stat().st_mtime)
    if not runs: print("bench/evaluation.py skipped: no run with an adapter/ in runs/. Run `make demo` first, or pass a run folder."); sys.exit()
    return runs[-1].parent.parent

def compare(run:Path)->dict:
    "Each side in its own process, then the figures."
    from ftbook.core import machine_info
    load_before = os.getloadavg()[0]
    sides = {}
    for side in SIDES:
        with tempfile.NamedTemporaryFile(suffix='.json') as f:
            subprocess.run([sys.executable, __file__, '--one', side, str(run/'adapter'), f.name, str(LIMIT or 0)], check=True)
            sides[side] = json.loads(Path(f.name).read_text())
        a = sides[side]['answers']
        sides[side] |= dict(answers_per_s=len(a)/sides[side]['generate_seconds'],
                            tokens_per_s=sum(x['new_tokens'] for x in a.values())/sides[side]['generate_seconds'], scores=clinic_scores(a))
        print(f"  {side}: {sides[side]['answers_per_s']:.3f} answers/s", flush=True)
    fast, plain = (sides[s]['answers'] for s in SIDES)
    same = {system: sum(fast[k]['text'] == plain[k]['text'] for k in fast if k.split('|')[1] == system) for system in sides[SIDES[0]]['scores']}
    return dict(run=str(run), answers=len(fast), batch=BATCH, max_new_tokens=MAX_NEW, identical_answers=same,
                speedup=sides[SIDES[0]]['answers_per_s']/sides[SIDES[1]]['answers_per_s'],
                sides={s: {k: v for k, v in d.items() if k != 'answers'} for s, d in sides.items()},
                load_average_1min=[load_before, os.getloadavg()[0]], cores=os.cpu_count(), machine=machine_info())

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    if sys.argv[1:2] == ['--one']:
        side, adapter, out, LIMIT = sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]) or None
        Path(out).write_text(json.dumps((ftbook_side if side == 'ftbook' else plain_side)(adapter)))
        sys.exit()
    LIMIT = int(sys.argv[2]) if len(sys.argv) > 2 else None
    res = compare(Path(sys.argv[1]) if len(sys.argv) > 1 else newest_run())
    info = res['machine']
    print(f"\nEvaluation of {res['run']} on the worked example's four test sets: {res['answers']} answers, batches of {BATCH}, "
          f"at most {MAX_NEW} new tokens; {info['dtype']} compute on {info['cpu_threads']} threads of {info['cpu']}")
    for side, s in res['sides'].items():
        print(f"  {side:26} {s['answers_per_s']:6.3f} answers/s  {s['tokens_per_s']:6.1f} tokens/s  generation {s['generate_seconds']:6.0f} s, "
              f"loading {s['load_seconds']:4.0f} s  {s['scores']}")
    print(f"ftbook is {res['speedup']:.2f}x the plain loop's answers per second; identical answers: "
          + ', '.join(f'{k} {v} of {res["answers"]//2}' for k, v in res['identical_answers'].items())
          + f"; 1-min load average {res['load_average_1min'][0]:.1f} before, {res['load_average_1min'][1]:.1f} after")
    if LIMIT: sys.exit()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/'evaluation.json').write_text(json.dumps(res, indent=2, default=str))
