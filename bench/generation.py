"""Batched generation against batch size 1: examples per second on the book's real model in 4 bits (target: batched at least 3x faster).

Run: `.venv/bin/python bench/generation.py [N_PROMPTS] [NEW_TOKENS] [THREADS]` (default: 16 prompts, 64 new tokens, torch's
default number of threads). Both runs generate exactly NEW_TOKENS tokens per prompt (EOS may not end an answer early), so they
do the same work and differ only in batching. Prints examples/s and tokens/s of each, the ratio and the machine's load, and
writes bench/results/generation-<threads>-threads.json.

Measure on a quiet machine: when other processes share the cores, batch size 1 suffers far more than a batch (each decoding
step is hundreds of tiny operations, and every one waits for a thread that another process has pre-empted), which inflates the
ratio. The load average printed beside the figures says whether that happened; THREADS=1 is less sensitive to it."""
import json, os, sys, time
from pathlib import Path
import torch
from transformers.utils import logging as hf_logging
from ftbook.core import machine_info
from ftbook.data import PromptTemplate
from ftbook.system import System
from ftbook.quant import load_model

NOTE = ('{age}-year-old {who} with {what} for {n} days. {extra}Temperature 38.{n} C. '
        'Plan: paracetamol 1 g up to four times a day, review in {n} weeks.')
WHAT = ['a dry cough', 'a sore throat', 'ear pain', 'back pain after lifting', 'burning when passing urine', 'a rash on both arms',
        'headaches in the morning', 'wheeze at night']

def notes(n:int)->list:
    "`n` made-up clinic notes of varied length (about 60 to 160 prompt tokens with the chat template)."
    return [dict(note=NOTE.format(age=20 + 3*i, who='woman' if i % 2 else 'man', what=WHAT[i % len(WHAT)], n=1 + i % 9,
                                  extra='No fever at home, eating and drinking well, no recent travel. ' * (i % 4)))
            for i in range(n)]

def timed(system, records, batch_size:int, new_tokens:int)->tuple:
    t0 = time.perf_counter()
    out = system.generate(records, max_new_tokens=new_tokens, min_new_tokens=new_tokens, batch_size=batch_size)  # equal work
    return time.perf_counter() - t0, out

if __name__ == '__main__':
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    new_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    if len(sys.argv) > 3: torch.set_num_threads(int(sys.argv[3]))
    model, tok = load_model()  # SmolLM2-135M-Instruct, NF4 4-bit
    system = System('base', model, tok, PromptTemplate(prompt='Note: {note}', system='Summarise the clinic note in three lines.'))
    records = notes(n)
    system.generate(records[:2], max_new_tokens=4, batch_size=2)  # warm-up: bitsandbytes repacks 4-bit weights on first use
    load_before = os.getloadavg()[0]
    t1, one = timed(system, records, 1, new_tokens)
    tb, batched = timed(system, records, n, new_tokens)
    assert all(a['new_tokens'] == new_tokens for a in one + batched)
    info = machine_info()
    res = dict(threads=torch.get_num_threads(), prompts=n, new_tokens=new_tokens, prompt_tokens=[a['prompt_tokens'] for a in one],
               batch_1=dict(seconds=t1, examples_per_s=n/t1, tokens_per_s=n*new_tokens/t1),
               batched=dict(batch_size=n, seconds=tb, examples_per_s=n/tb, tokens_per_s=n*new_tokens/tb),
               speedup=t1/tb, load_average_1min=[load_before, os.getloadavg()[0]], cores=os.cpu_count(), machine=info)
    print(f"SmolLM2-135M-Instruct, NF4 4-bit, {info['dtype']} compute on {info['cpu_threads']} threads of {info['cpu']}; "
          f"{n} prompts of {min(res['prompt_tokens'])}-{max(res['prompt_tokens'])} tokens, {new_tokens} new tokens each")
    print(f"  batch size 1:  {res['batch_1']['examples_per_s']:6.3f} examples/s  ({res['batch_1']['tokens_per_s']:6.1f} tokens/s, {t1:6.1f} s)")
    print(f"  batch size {n}: {res['batched']['examples_per_s']:6.3f} examples/s  ({res['batched']['tokens_per_s']:6.1f} tokens/s, {tb:6.1f} s)")
    print(f"  batched is {res['speedup']:.1f}x faster (target: at least 3x); 1-min load average {load_before:.1f} before, "
          f"{res['load_average_1min'][1]:.1f} after (above {os.cpu_count()} cores: other work shared the CPU)")
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    (out/f"generation-{res['threads']}-threads.json").write_text(json.dumps(res, indent=2))
