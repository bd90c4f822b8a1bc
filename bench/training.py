"""QLoRA training throughput against the standard stack, side by side in one run: ftbook (length-grouped batches, and packed rows),
TRL's `SFTTrainer` (its defaults, and with its packing on), and a plain PEFT + transformers `Trainer` baseline that pads each batch to its
longest example.

Run: `.venv/bin/python bench/training.py [N_TRAIN]` (default: 64 clinic notes, one epoch). Each system trains in a process of its own
(so its peak resident memory is its own) on the same model (the book's SmolLM2-135M-Instruct in NF4 4-bit, bf16 compute where the CPU has
it), the same prompt/completion pairs, the same LoRA (r=16, alpha=32, no dropout, every linear layer), learning rate (1e-3), schedule
(cosine, 5% warmup), optimizer (AdamW), sequence length (512) and effective batch (8 rows of up to 512 tokens). Gradient checkpointing is
off for all (TRL turns it on by default; on a CPU memory is not what limits). Everything else is each system's own default.

Per system: tokens and loss-bearing tokens per second of training, the share of padding in its batches, peak resident memory, the final
validation loss (mean loss per completion token of the same 16 held-out pairs, computed the same way for every system, from the saved
adapter), tokens/s as a ratio to ftbook's, and the achieved FLOP/s against this CPU's measured bf16 matrix-multiply peak, counting the
work the task needs:

    FLOPs = (4 (N_frozen - N_head) + 6 N_trainable) x tokens + 4 N_head x loss tokens

per non-padding token: a forward pass through every weight of the body (2 FLOPs per weight), a backward pass through it to the
activations (2 more), and weight gradients for the adapters only (2 more per trainable weight); the output layer (N_head = vocabulary x
hidden size) is needed only where there is loss, forward and backward to its input (4 FLOPs per weight per loss token). A system that
runs the output layer at every position does more work than this and gets no credit for it. Attention's score and value products are
left out (under 5% of the total at these lengths). Writes bench/results/training.json. The figures are ratios measured in one run on one
machine, not promises: run it on a quiet machine (the load average is recorded)."""
import json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path
import torch
import ftbook.quant  # before transformers: bitsandbytes then loads its CPU kernels quietly
from transformers import TrainerCallback, set_seed
from transformers.utils import logging as hf_logging

N_VAL, BATCH, MAX_LEN, LR, SEED = 16, 8, 512, 1e-3, 42
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.0, target_modules='all-linear', task_type='CAUSAL_LM')
SYSTEMS = ['ftbook', 'ftbook, packed rows', 'TRL SFTTrainer', 'TRL SFTTrainer, packing', 'PEFT + Trainer, pad to longest']
RESULTS = Path(__file__).parent/'results'

# ---------------------------------------------------------------- shared by every system
def clinic_data(n_train:int)->tuple:
    "The worked example's records and their (prompt, completion) pairs: `n_train` training notes and N_VAL held-out ones."
    from ftbook.tasks.clinic import SHORT_TEMPLATE
    from ftbook.data import make_pairs
    from ftbook.tasks.clinic_notes import clinic_notes
    records = clinic_notes(n_train + N_VAL, seed=0)
    pairs = make_pairs(records, SHORT_TEMPLATE)
    return records[:n_train], pairs[:n_train], pairs[n_train:]

class Meter(TrainerCallback):
    "What the training batches hold (positions, non-padding tokens, loss tokens) and the time from the first step to the end."
    def __init__(self, pad_id:int|None=None): # rows without an attention mask: the id that pads them (None: they are not padded)
        self.pad_id, self.positions, self.tokens, self.loss_tokens, self.t0, self.t1 = pad_id, 0, 0, 0, None, None
    def on_train_begin(self, args, state, control, train_dataloader=None, **kw):
        loader = train_dataloader
        while hasattr(loader, 'base_dataloader'): loader = loader.base_dataloader  # accelerate wraps the torch DataLoader
        collate = loader.collate_fn
        def counting(rows):
            b = collate(rows); self.count(b); return b
        loader.collate_fn = counting
    def count(self, b):
        ids = b['input_ids']
        self.positions += ids.numel()
        if 'attention_mask' in b: self.tokens += int(b['attention_mask'].sum())
        else: self.tokens += ids.numel() if self.pad_id is None else int((ids != self.pad_id).sum())  # packed rows
        self.loss_tokens += int((b['labels'][:, 1:] != -100).sum())  # labels are shifted: the first position never carries loss
    def on_step_begin(self, *a, **kw):
        if self.t0 is None: self.t0 = time.perf_counter()
    def on_train_end(self, *a, **kw): self.t1 = time.perf_counter()
    def figures(self)->dict:
        s = self.t1 - self.t0
        if not self.positions: raise RuntimeError('No training batch was counted: the collate hook did not take.')
        return dict(seconds=s, positions=self.positions, tokens=self.tokens, loss_tokens=self.loss_tokens, tokens_per_s=self.tokens/s,
                    loss_tokens_per_s=self.loss_tokens/s, padding_share=1 - self.tokens/self.positions)

def validation_loss(adapter_dir:str, val_pairs:list)->float:
    "Mean loss per completion token of `val_pairs`, for the adapter in `adapter_dir` on a freshly loaded 4-bit base: the same for all."
    from peft import PeftModel
    from ftbook.tasks.clinic import SHORT_TEMPLATE
    from ftbook.data import tokenize_pairs
    from ftbook.quant import load_model
    from ftbook.layout import cpu_inference_repacking
    base, tok = load_model()
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    cpu_inference_repacking(model, False)  # a few forward passes: not worth bitsandbytes' one-off repacking
    total = n = 0
    with torch.no_grad():
        for e in tokenize_pairs(val_pairs, tok, SHORT_TEMPLATE, MAX_LEN)['examples']:
            labels = torch.tensor([e['labels']])
            k = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=torch.tensor([e['input_ids']]), labels=labels).loss.item() * k; n += k
    return total / n

def plain_model():
    "The book's model in NF4 4-bit the plain transformers way, and its tokenizer (EOS as padding when it has no pad token)."
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from ftbook.core import pick_dtype
    from ftbook.model import pretrained_model
    folder, dtype = pretrained_model(), pick_dtype()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype))
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None: tok.pad_token = tok.eos_token
    return model, tok

def common_args(out:str)->dict:
    "The training settings every system shares."
    from ftbook.core import pick_dtype
    return dict(output_dir=out, num_train_epochs=1, per_device_train_batch_size=BATCH, learning_rate=LR, lr_scheduler_type='cosine',
                warmup_steps=0.05, optim='adamw_torch', bf16=pick_dtype() == torch.bfloat16, use_cpu=not torch.cuda.is_available(),
                activation_checkpointing=False, save_strategy='no', eval_strategy='no', logging_steps=1, report_to=[], seed=SEED,
                data_seed=SEED, disable_tqdm=True)

# ---------------------------------------------------------------- the systems
def run_ftbook(train_records, out, meter, packing:bool)->str:
    from ftbook.tasks.worked_example import worked_example_config
    from ftbook.model import load_tokenizer, pretrained_model
    from ftbook.monitor import TrainingMonitor
    from ftbook.training import train
    class Monitor(TrainingMonitor):  # ftbook's own monitor, passing the meter its events
        def on_train_begin(self, *a, **kw): meter.on_train_begin(*a, **kw); return super().on_train_begin(*a, **kw)
        def on_step_begin(self, *a, **kw): meter.on_step_begin(*a, **kw); return super().on_step_begin(*a, **kw)
        def on_train_end(self, *a, **kw): meter.on_train_end(*a, **kw); return super().on_train_end(*a, **kw)
    config = worked_example_config(f'{out}/run', packing=packing, max_len=MAX_LEN, lr=LR, batch_size=BATCH)
    config.train.eval_every, config.train.patience = 10**6, None  # no validation during the run, as for the others
    meter.pad_id = load_tokenizer(pretrained_model()).pad_token_id  # ftbook pads packed rows with a token no text contains
    res = train(config, train_records, train_records[:BATCH], monitor=Monitor(), progress_bar=False)
    return res.adapter_dir

def run_trl(train_pairs, out, meter, packing:bool)->str:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer
    model, tok = plain_model()
    data = Dataset.from_list([dict(prompt=[{'role': 'user', 'content': p['prompt']}], completion=[{'role': 'assistant', 'content': p['completion']}])
                              for p in train_pairs])
    set_seed(SEED)
    trainer = SFTTrainer(model=model, args=SFTConfig(**common_args(out), max_length=MAX_LEN, packing=packing), train_dataset=data,
                         processing_class=tok, peft_config=LoraConfig(**LORA), callbacks=[meter])
    trainer.train()
    trainer.model.save_pretrained(f'{out}/adapter')
    return f'{out}/adapter'

def run_plain(train_pairs, out, meter)->str:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
    model, tok = plain_model()
    rows = []
    for p in train_pairs:
        prompt = tok(tok.apply_chat_template([{'role': 'user', 'content': p['prompt']}], tokenize=False, add_generation_prompt=True),
                     add_special_tokens=False).input_ids
        answer = tok(p['completion'], add_special_tokens=False).input_ids + [tok.eos_token_id]
        rows.append(dict(input_ids=prompt + answer, labels=[-100]*len(prompt) + answer))
    set_seed(SEED)
    model = get_peft_model(prepare_model_for_kbit_training(model, use_gradient_checkpointing=False), LoraConfig(**LORA))
    trainer = Trainer(model=model, args=TrainingArguments(**common_args(out)), train_dataset=rows, callbacks=[meter],
                      data_collator=DataCollatorForSeq2Seq(tok, padding='longest', label_pad_token_id=-100))
    trainer.train()
    model.save_pretrained(f'{out}/adapter')
    return f'{out}/adapter'

def one_system(name:str, n_train:int)->dict:
    "Train `name` on the pairs; its figures, measured in this process."
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    train_records, train_pairs, val_pairs = clinic_data(n_train)
    meter = Meter()
    with tempfile.TemporaryDirectory() as out:
        if name.startswith('ftbook'): adapter = run_ftbook(train_records, out, meter, packing='packed' in name)
        elif name.startswith('TRL'): adapter = run_trl(train_pairs, out, meter, packing='packing' in name)
        else: adapter = run_plain(train_pairs, out, meter)
        from safetensors import safe_open
        with safe_open(f'{adapter}/adapter_model.safetensors', 'pt') as f: trainable = sum(f.get_tensor(k).numel() for k in f.keys())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak of this process, training included
        return dict(meter.figures(), peak_rss_bytes=rss, trainable_params=trainable, val_loss=validation_loss(adapter, val_pairs))

# ---------------------------------------------------------------- the comparison
def matmul_peak(dtype:torch.dtype, n:int=2048, seconds:float=3.0)->float:
    "Measured FLOP/s of square `n` x `n` matrix multiplies in `dtype` on this machine's default threads (best of repeated runs)."
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b; best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter(); a @ b; best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best

def frozen_params()->tuple:
    "Weights of the base model (the tied input/output embedding counted once: the output projection is a matrix multiply), and of its output layer."
    from transformers import AutoConfig, AutoModelForCausalLM
    from ftbook.model import pretrained_model
    with torch.device('meta'): m = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(pretrained_model()))
    return sum(p.numel() for p in m.parameters()), m.get_output_embeddings().weight.numel()

def compare(n_train:int)->dict:
    "Every system in its own process, then the table."
    from ftbook.core import machine_info
    load_before = os.getloadavg()[0]
    peak = {'bfloat16': matmul_peak(torch.bfloat16), 'float32': matmul_peak(torch.float32)}
    systems = {}
    for name in SYSTEMS:
        with tempfile.NamedTemporaryFile(suffix='.json') as f:
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, '--one', name, str(n_train), f.name], check=True)
            systems[name] = json.loads(Path(f.name).read_text()) | dict(wall_seconds=time.perf_counter() - t)
        print(f"  {name}: {systems[name]['tokens_per_s']:.0f} tokens/s", flush=True)
    n_frozen, n_head = frozen_params()
    for s in systems.values():
        s['flops'] = (4 * (n_frozen - n_head) + 6 * s['trainable_params']) * s['tokens'] + 4 * n_head * s['loss_tokens']
        s['flop_per_s'] = s['flops'] / s['seconds']
        s['share_of_bf16_peak'] = s['flop_per_s'] / peak['bfloat16']
        s['ratio_to_ftbook'] = s['tokens_per_s'] / systems['ftbook']['tokens_per_s']
    return dict(n_train=n_train, n_val=N_VAL, batch=BATCH, max_len=MAX_LEN, lr=LR, lora=LORA, frozen_params=n_frozen, head_params=n_head,
                matmul_peak_flop_per_s=peak, systems=systems, load_average_1min=[load_before, os.getloadavg()[0]],
                cores=os.cpu_count(), machine=machine_info(),
                formula='FLOPs = (4 (N_frozen - N_head) + 6 N_trainable) x non-padding tokens + 4 N_head x loss tokens')

def table(res:dict):
    "The comparison as a DataFrame, one row per system."
    import pandas as pd
    return pd.DataFrame({name: {'tokens/s': s['tokens_per_s'], 'loss tokens/s': s['loss_tokens_per_s'], 'padding': s['padding_share'],
                                'peak RSS (MB)': s['peak_rss_bytes'] / 2**20, 'val loss': s['val_loss'], 'vs ftbook': s['ratio_to_ftbook'],
                                'GFLOP/s': s['flop_per_s'] / 1e9, 'of bf16 peak': s['share_of_bf16_peak']}
                         for name, s in res['systems'].items()}).T

if __name__ == '__main__':
    if sys.argv[1:2] == ['--one']:
        name, n, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        Path(out).write_text(json.dumps(one_system(name, n)))
        sys.exit()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    res = compare(n)
    info = res['machine']
    print(f"\nQLoRA training, SmolLM2-135M-Instruct in NF4 4-bit, {info['dtype']} compute, {info['cpu_threads']} threads of {info['cpu']}; "
          f"{n} clinic notes, one epoch, {BATCH} rows per step, max length {MAX_LEN}")
    print(table(res).to_markdown(floatfmt='.3g'))
    print(f"bf16 matmul peak {res['matmul_peak_flop_per_s']['bfloat16']/1e9:.1f} GFLOP/s, float32 {res['matmul_peak_flop_per_s']['float32']/1e9:.1f}; "
          f"{res['formula']}; 1-min load average {res['load_average_1min'][0]:.1f} before, {res['load_average_1min'][1]:.1f} after")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/'training.json').write_text(json.dumps(res, indent=2, default=str))
