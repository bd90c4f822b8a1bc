"ftbook.quant as a user imports it: the real model end to end, an interrupted conversion, and bad inputs that must fail clearly."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import save_file
from transformers import BertConfig
from ftbook.model import INSTALL_CMD, PackagedModel, packaged_file, pretrained_model
from ftbook.quant import load_model, memory_report
from ftbook.testing import lora_smoke_step, tiny_model
from ftbook.system import System

def test_real_model_loads_generates_and_trains():
    "SmolLM2-135M-Instruct in 4 bits: it answers, its 4-bit layers cost ~4.127 bits, and a LoRA step reaches every adapter after generating."
    model, tok = load_model()
    q = memory_report(model).loc['4-bit (NF4)']
    assert abs(q.bits_per_param - 4.127) < 0.05 and q.bytes/q.bf16_bytes <= 0.27
    answer = System('real', model, tok).ask('Name one organ of the human body.', max_new_tokens=20)
    assert len(answer.split()) >= 1 and answer.isprintable()
    step = lora_smoke_step(model, tok)  # after generating: the CPU repacking must have been undone
    assert step['lora_B'] == 30*7 and step['lora_B_with_grad'] == step['lora_B'] and 0 < step['loss'] < 20

def test_interrupted_conversion_leaves_no_model_then_converts_once(tmp_path, kill_at):
    env = {**os.environ, 'FTBOOK_CACHE': str(tmp_path/'cache')}
    code = "from ftbook.model import pretrained_model; print(pretrained_model(source='package'))"
    kill_at([sys.executable, '-c', code], 'converting', env=env)  # killed with the weights written, the tokenizer not yet
    models = tmp_path/'cache'/'models'
    assert [p.name for p in models.glob('.*tmp-*') if any(p.iterdir())] and not (models/'SmolLM2-135M-Instruct').exists()
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(out)
    assert json.loads((folder/'ftbook.json').read_text())['quantization'] == 'Q4_1'
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(again) == folder and {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written  # reused, not converted again

# ---- bad inputs: each fails before any long work, with a message that names the problem and the fix
def _folder(tmp_path, **files):
    d = tmp_path/'model'; d.mkdir()
    for name,content in files.items(): (d/name.replace('__', '.')).write_text(content)
    return d

def test_unknown_name(): 
    with pytest.raises(FileNotFoundError, match='neither a local folder nor reachable'): pretrained_model('no-org/no-model')

def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match='no config.json'): load_model(_folder(tmp_path, notes__txt='x'))

def test_pickle_weights_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='pickle'): load_model(_folder(tmp_path, config__json='{}', pytorch_model__bin=''))

def test_folder_without_tokenizer(tmp_path):
    d = _folder(tmp_path, config__json='{}'); save_file({'w': torch.zeros(1)}, d/'model.safetensors')
    with pytest.raises(FileNotFoundError, match='no tokenizer'): load_model(d)

def test_not_a_causal_lm(tmp_path):
    d = tmp_path/'bert'; BertConfig(architectures=['BertForMaskedLM']).save_pretrained(d)
    save_file({'w': torch.zeros(1)}, d/'model.safetensors'); shutil.copy(tiny_model()/'tokenizer.json', d)
    with pytest.raises(ValueError, match='not a causal language model'): load_model(d)

def test_unknown_quantization():
    with pytest.raises(ValueError, match="use 'nf4'"): load_model(tiny_model(), quant='int3')

def test_missing_model_package_prints_install_command():
    with pytest.raises(ImportError) as e: packaged_file(PackagedModel('x', 'x/x', 'ftbook_absent_pkg', 'x.gguf', 'Q4_1', ''))
    assert INSTALL_CMD in str(e.value)

def test_no_cuda_here_is_a_clear_error():
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    with pytest.raises(RuntimeError, match="device='cpu'"): load_model(tiny_model(), device='cuda')

def test_missing_folder_is_not_sent_to_the_hub():
    with pytest.raises(FileNotFoundError, match='neither a local folder'): pretrained_model('./models/typo-in-a-folder-name')

def test_unknown_source():
    with pytest.raises(ValueError, match="use 'auto', 'hub' or 'package'"): pretrained_model(source='pypi')
