"""llama.cpp itself reads the GGUF files ftbook writes: same tokens as transformers, same next-token logits within the weight type's tolerance.

Opt-in: `make test-runtimes` builds llama-cpp-python (it compiles llama.cpp) and runs this file; without it installed, these tests skip."""
import numpy as np, pytest, torch
llama_cpp = pytest.importorskip('llama_cpp', reason='llama-cpp-python is not installed: `make test-runtimes` builds and installs it')
from transformers import AutoModelForCausalLM, AutoTokenizer
from ftbook.ship import write_gguf
from ftbook.testing import tiny_model

TEXT = "<|im_start|>user\nPatient: 58-year-old male, aspirin 81 mg PO daily. I've 33 333 of them 🦙<|im_end|>\n<|im_start|>assistant\n"
TOLERANCE = dict(f16=0.002, q8_0=0.05)  # of the logits' largest magnitude, as in the export chapter

@pytest.mark.parametrize('arch', ['llama', 'mistral', 'qwen2', 'phi3'])  # name='tiny': llama.cpp treats a model *named* like Phi-3 as having Phi-3's SentencePiece tokens
@pytest.mark.parametrize('quant', ['f16', 'q8_0'])
def test_llama_cpp_reads_the_export(arch, quant, tmp_path):
    src = tiny_model(arch)
    llm = llama_cpp.Llama(str(write_gguf(src, tmp_path/f'{arch}.gguf', quant, name='tiny')), n_ctx=256, logits_all=True, n_threads=2, verbose=False)
    ids = AutoTokenizer.from_pretrained(src)(TEXT)['input_ids']
    assert llm.tokenize(TEXT.encode(), add_bos=False, special=True) == ids  # llama.cpp's pre-tokenizer splits as transformers does
    llm.eval(ids)
    got = np.array(llm.scores[:len(ids)])
    with torch.no_grad(): ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(got - ref).max() <= TOLERANCE[quant] * np.abs(ref).max(), (np.abs(got - ref).max(), np.abs(ref).max())
