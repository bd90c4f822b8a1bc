"""The 4-bit footprint against bf16: the book's model loaded both ways, each in a process of its own.

Run: `.venv/bin/python bench/footprint.py`. For each way of loading: the bytes of its weights (`ftbook.quant.memory_report`: packed 4-bit
data with its quantization constants, and the layers kept in 16 bits: the embedding and the norms), by kind of storage, and the peak
resident memory of the loading process (transient: a 4-bit load reads the 16-bit weights and quantizes them as it goes; the weights are
the figure that grows with the model and stays). Writes bench/results/footprint.json."""
import json, resource, subprocess, sys, tempfile
from pathlib import Path
import torch

WAYS = {'NF4 4-bit (QLoRA)': 'nf4', 'bf16': None}
RESULTS = Path(__file__).parent/'results'

def one_way(quant:str|None)->dict:
    "Load the model one way in this process; its figures."
    from transformers.utils import logging as hf_logging
    from ftbook.quant import load_model, memory_report
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    model, _ = load_model(quant=quant, dtype=torch.bfloat16)
    report = memory_report(model)
    return dict(weight_bytes=int(report.loc['total', 'bytes']), params=int(report.loc['total', 'params']),
                bits_per_param=float(report.loc['total', 'bits_per_param']), by_storage=report.drop('total').to_dict('index'),
                peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

if __name__ == '__main__':
    if sys.argv[1:2] == ['--one']:
        Path(sys.argv[3]).write_text(json.dumps(one_way(None if sys.argv[2] == 'none' else sys.argv[2]))); sys.exit()
    from ftbook.core import machine_info
    res = {}
    for name, quant in WAYS.items():
        with tempfile.NamedTemporaryFile(suffix='.json') as f:
            subprocess.run([sys.executable, __file__, '--one', quant or 'none', f.name], check=True)
            res[name] = json.loads(Path(f.name).read_text())
    four, bf16 = res['NF4 4-bit (QLoRA)'], res['bf16']
    print(f"SmolLM2-135M-Instruct, {four['params']/1e6:.1f}M parameters")
    for name, r in res.items():
        kinds = ', '.join(f"{k} {v['bytes']/2**20:.1f} MiB at {v['bits_per_param']:.2f} bits" for k, v in r['by_storage'].items())
        print(f"  {name:18} weights {r['weight_bytes']/2**20:6.1f} MiB ({r['bits_per_param']:4.1f} bits/param: {kinds}); "
              f"peak resident memory while loading {r['peak_rss_bytes']/2**20:5.0f} MiB")
    print(f"  4-bit weights are {bf16['weight_bytes']/four['weight_bytes']:.2f}x smaller than bf16")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/'footprint.json').write_text(json.dumps(dict(ways=res, ratio=bf16['weight_bytes']/four['weight_bytes'], machine=machine_info()), indent=2))
