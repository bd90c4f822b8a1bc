"""Data-preparation throughput: read, pair, split, tokenize and check 10,000 pairs (target: under 10 s on 2 cores).

Run: `.venv/bin/python bench/data_prep.py [N]`. Prints a table of seconds per step and writes bench/results/data_prep.json."""
import json, random, sys, time
from pathlib import Path
from transformers.utils import logging as hf_logging
from ftbook.core import machine_info
from ftbook.data import PromptTemplate, make_pairs, pair_report, split_pairs, tokenize_pairs
from ftbook.model import load_tokenizer, pretrained_model

WORDS = ('steel aluminium merino wool recycled polyester waterproof light warm compact folding insulated durable '
         'quiet rechargeable cotton bamboo ceramic glass oak leather nylon canvas').split()

def synthetic_products(n:int, seed:int=0)->list:
    "`n` fictional product records of varied length, with about 2% repeated."
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        if recs and rng.random() < 0.02: recs.append(dict(rng.choice(recs))); continue
        specs = '; '.join(f'{rng.choice(WORDS)} {rng.randint(1, 999)} {rng.choice(["g", "ml", "cm", "l"])}' for _ in range(rng.randint(2, 8)))
        desc = ' '.join(rng.choice(WORDS) for _ in range(rng.randint(8, 120))).capitalize() + '.'
        recs.append(dict(name=f'Item {i}', specs=specs, price=f'{rng.uniform(5, 300):.2f}', description=desc))
    return recs

def timed(label, f, times):
    t0 = time.perf_counter(); out = f(); times[label] = time.perf_counter() - t0
    return out

if __name__ == '__main__':
    hf_logging.disable_progress_bar()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    tok = load_tokenizer(pretrained_model())
    template = PromptTemplate('Write the description.\nProduct: {name}\nSpecifications: {specs}\nPrice: {price}', '{description}',
                              system='House style: every specification, the price last.')
    records, times = synthetic_products(n), {}
    pairs = timed('pair', lambda: make_pairs(records, template), times)
    train, val, test = timed('split', lambda: split_pairs(pairs, val=0.1, test=0.1), times)
    tk = timed('tokenize', lambda: tokenize_pairs(train, tok, template, max_len=512), times)
    report = timed('check', lambda: pair_report(train, tok, template, max_len=512, val=val), times)
    total = sum(times.values())
    print(f'{n:,} pairs on {machine_info()["cpu_threads"]} threads')
    for k,v in times.items(): print(f'  {k:>9}: {v:6.2f} s')
    print(f'  {"total":>9}: {total:6.2f} s  ({n/total:,.0f} pairs/s)  target: under 10 s for 10,000')
    print('  findings:', {k: len(report.indices(k)) for k in report.findings})
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    (out/'data_prep.json').write_text(json.dumps(dict(n=n, seconds=times, total=total, machine=machine_info()), indent=2))
