"ftbook.eval beyond the chapter: batched generation against one-by-one on the real model, atomic saving, and clear errors for bad input."
import json
import pandas as pd, pytest, torch
from ftbook.data import PromptTemplate
from ftbook.system import SHARED_MIN, System, _answer, _next_tokens, base_system, dequantized, four_bit, load_system, shared_prefix
from ftbook.eval import EvalResult, FormatCompliance, Rouge, TextMetric, compare, load_results, perplexity, save_results
from ftbook.core import cpu_has_bf16
from ftbook.quant import load_model
from ftbook.testing import TINY_ARCHS, random_lora, tiny_model

T = PromptTemplate(prompt='Note: {note}', completion='{summary}', system='Summarise the clinic note in three lines.')
NOTES = [dict(note='Cough.', summary='Patient: adult\nProblem: cough\nPlan: rest'),
         dict(note='58-year-old man, blood pressure 158/96 on three readings, no symptoms. Start amlodipine 5 mg once daily, '
                   'review in 4 weeks.', summary='Patient: 58-year-old man\nProblem: blood pressure 158/96\nPlan: amlodipine 5 mg, review in 4 weeks'),
         dict(note='7-year-old boy with wheeze at night and after football for 2 months. Chest clear today, peak flow 220 L/min. '
                   'Likely asthma. Salbutamol inhaler 100 mcg, 2 puffs as needed, asthma plan given, review in 6 weeks. ' * 2,
              summary='Patient: 7-year-old boy\nProblem: wheeze\nPlan: salbutamol'),
         dict(note='Sore throat for three days, no fever.', summary='Patient: adult\nProblem: sore throat\nPlan: fluids')]

@pytest.fixture(scope='module', autouse=True)
def one_thread():
    "One torch thread: on a shared 2-core machine, two threads decoding one row at a time wait on each other (10x slower)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def tiny():
    model, tok = load_model(tiny_model('llama'), quant=None, dtype=torch.float32)
    return System('tiny', model, tok, T)

# --- batched generation equals one-by-one generation on the real model -------------------------------------------------

def one_by_one_vs_batched(system, n_new=32):
    batched = system.generate(NOTES, max_new_tokens=n_new, batch_size=len(NOTES))
    alone = [system.generate([n], max_new_tokens=n_new)[0] for n in NOTES]
    return batched, alone

def test_real_model_float32_batched_equals_one_by_one():
    "Unquantized float32: prompts of 30 to 200 tokens in one left-padded batch give token for token the answers of batch size 1."
    model, tok = load_model(quant=None, dtype=torch.float32)
    batched, alone = one_by_one_vs_batched(System('real fp32', model, tok, T))
    lengths = [a['prompt_tokens'] for a in alone]
    assert max(lengths) > 3*min(lengths), lengths  # the batch really mixes lengths
    assert batched == alone

def top2_margin(model, ids:list)->float:
    "Gap between the two most likely next tokens after `ids`."
    with torch.no_grad(): logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    top = logits.topk(2).values
    return (top[0] - top[1]).item()

def test_real_model_4bit_batched_differs_only_at_near_ties():
    "In 4 bits with bf16 arithmetic a padded batch rounds differently; an answer may change only where two tokens nearly tie."
    model, tok = load_model()
    system = System('real nf4', model, tok, T)
    batched, alone = one_by_one_vs_batched(system)
    prompts = system.prompts(NOTES)
    same = sum(b == a for b, a in zip(batched, alone))
    assert same >= len(NOTES) - 1, (batched, alone)
    for p, b, a in zip(prompts, batched, alone):
        if b == a: continue
        tb, ta = tok(b['text'], add_special_tokens=False)['input_ids'], tok(a['text'], add_special_tokens=False)['input_ids']
        k = next(i for i, (x, y) in enumerate(zip(tb + [None], ta + [None])) if x != y)
        margin = top2_margin(model, tok(p, add_special_tokens=False)['input_ids'] + ta[:k])
        assert margin < 0.25, f'answers diverge at token {k}, where the top two tokens are {margin:.3f} apart: not a rounding tie'

# --- results are saved atomically --------------------------------------------------------------------------------------

def small_result(tiny):
    return compare([tiny], NOTES[:2], [Rouge()], max_new_tokens=4, with_perplexity=False)

def test_save_results_replaces_whole_and_a_failed_save_keeps_the_old(tmp_path, tiny):
    res = small_result(tiny)
    first = save_results(res, tmp_path)
    assert sorted(p.name for p in first.iterdir()) == ['examples.csv', 'examples.jsonl', 'results.json', 'summary.csv']
    settings = json.loads((first/'results.json').read_text())['settings']
    assert settings['generation']['max_new_tokens'] == 4 and settings['systems']['tiny']['template'] == T.to_dict()
    broken = EvalResult(res.summary, 'not a DataFrame', res.settings)  # fails after summary.csv is written
    with pytest.raises(AttributeError): save_results(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['eval'], 'a failed save left a temporary folder behind'
    pd.testing.assert_frame_equal(load_results(first).examples, res.examples, check_dtype=False)
    assert load_results(first).settings == settings  # the previous results, intact
    res2 = compare([tiny], NOTES[:3], [Rouge()], max_new_tokens=4, with_perplexity=False)
    save_results(res2, tmp_path)
    assert len(load_results(first).examples) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ['eval']

def test_load_results_of_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match='save_results'): load_results(tmp_path)

# --- bad generation arguments ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs,words', [
    (dict(temperature=-0.5), ['temperature=-0.5', 'use 0 for greedy']),
    (dict(temperature=float('nan')), ['temperature=nan']),
    (dict(max_new_tokens=0), ['max_new_tokens=0', 'at least 1']),
    (dict(max_new_tokens=2.5), ['max_new_tokens=2.5', 'whole number']),
    (dict(top_p=0), ['top_p=0', '(0, 1]']),
    (dict(top_k=-1), ['top_k=-1']),
    (dict(batch_size=0), ['batch_size=0']),
    (dict(candidates=0), ['candidates=0', 'with a score']),
    (dict(temperature=-1, max_new_tokens=0), ['temperature=-1', 'max_new_tokens=0']),  # every problem at once
])
def test_bad_generation_settings(tiny, kwargs, words):
    with pytest.raises(ValueError) as e: tiny.generate(NOTES[:1], **kwargs)
    assert all(w in str(e.value) for w in words), str(e.value)

def test_generation_leaves_training_mode_as_it_was(tiny):
    tiny.model.train()
    tiny.generate(NOTES[:1], max_new_tokens=2)
    assert tiny.model.training
    tiny.model.eval()

# --- loading systems -----------------------------------------------------------------------------------------------------

def test_neither_adapter_nor_model(tmp_path):
    (tmp_path/'notes.txt').write_text('hello')
    with pytest.raises(FileNotFoundError) as e: load_system(tmp_path)
    assert 'neither a PEFT adapter folder' in str(e.value) and 'notes.txt' in str(e.value)
    with pytest.raises(FileNotFoundError, match='does not exist'): load_system(tmp_path/'missing')

def test_adapter_without_weights_or_base(tmp_path):
    (tmp_path/'adapter_config.json').write_text(json.dumps(dict(base_model_name_or_path=str(tmp_path/'gone'))))
    with pytest.raises(FileNotFoundError, match='no adapter_model.safetensors'): load_system(tmp_path)
    (tmp_path/'adapter_model.safetensors').write_bytes(b'')
    with pytest.raises(FileNotFoundError, match="trained on '.*gone' .*cannot be loaded"): load_system(tmp_path)
    (tmp_path/'adapter_config.json').write_text('{}')
    with pytest.raises(ValueError, match='names no base model'): load_system(tmp_path)

# --- comparing ---------------------------------------------------------------------------------------------------------

def test_compare_refuses_mismatched_systems(tiny):
    other = System('tiny', tiny.model, tiny.tok, PromptTemplate('{note}', 'Summary: {summary}'))
    with pytest.raises(ValueError, match='names must differ'): compare([tiny, other], NOTES, [Rouge()])
    other.name = 'other'
    with pytest.raises(ValueError, match='other references'): compare([tiny, other], NOTES, [Rouge()], max_new_tokens=2)
    with pytest.raises(KeyError, match="source_field='text'.*record 0"): compare([tiny], NOTES, [Rouge()], source_field='text')
    with pytest.raises(ValueError, match='list of `System`s'): compare(tiny, NOTES, [Rouge()])
    with pytest.raises(ValueError, match='No records'): compare([tiny], [], [Rouge()])

def test_metric_errors():
    with pytest.raises(ValueError, match='required section headers'): FormatCompliance([])
    with pytest.raises(ValueError, match='no examples to score'): Rouge().compute(predictions=[], references=[])
    class NoScore(TextMetric): pass
    with pytest.raises(NotImplementedError, match='defines `score`'): NoScore().compute(predictions=['a'], references=['a'])

def test_perplexity_needs_references(tiny):
    with pytest.raises(KeyError, match="no field \\['summary'\\]"): perplexity(tiny, [dict(note='x')])

def test_adapter_saved_like_a_training_run(tmp_path):
    "adapter/ with its tokenizer and template.json, as ftbook.training saves it: the system uses both."
    from peft import LoraConfig, get_peft_model
    model, tok = load_model(tiny_model('llama'))
    peft = get_peft_model(model, LoraConfig(r=2, target_modules='all-linear', task_type='CAUSAL_LM'))
    peft.save_pretrained(tmp_path/'run'/'adapter'); tok.save_pretrained(tmp_path/'run'/'adapter')
    (tmp_path/'run'/'adapter'/'template.json').write_text(json.dumps(T.to_dict()))
    s = load_system(tmp_path/'run'/'adapter')
    assert s.name == 'run/adapter' and s.template == T and s.tok.pad_token == tok.pad_token
    out = s.generate(NOTES[:2], max_new_tokens=3)
    assert len(out) == 2 and all(1 <= o['new_tokens'] <= 3 for o in out)

# --- faster generation: the shared prefix computed once, 4-bit weights dequantized ------------------------------------

LONG = PromptTemplate(prompt='Rules: write three lines, keep every number, name each drug with its dose.\nExample: cough for 3 days, '
                             'paracetamol 1 g.\n\nNote: {note}', completion='{summary}', system='Summarise the clinic note in three lines.')

@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_shared_prefix_gives_the_answers_of_one_by_one(arch):
    "Prompts sharing a long start: its cache is computed once and every row continues from it, pads between it and the row's own end; the answers equal batch size 1's, token for token, on every architecture."
    model, tok = load_model(tiny_model(arch), quant=None, dtype=torch.float32)
    system = System(arch, model, tok, LONG)
    head, cache = shared_prefix(model, tok(system.prompts(NOTES), add_special_tokens=False)['input_ids'])
    assert len(head) >= SHARED_MIN and cache.get_seq_length() == len(head)
    batched, alone = one_by_one_vs_batched(system, n_new=16)
    assert batched == alone

def transformers_tokens(model, tok, prompts:list, n_new:int)->list:
    "The reference: the new token ids of transformers' own greedy `generate`, one prompt at a time, stopping at the tokenizer's EOS."
    as_ids = lambda p: tok(p, add_special_tokens=False, return_tensors='pt')['input_ids']
    return [model.generate(input_ids=as_ids(p), attention_mask=torch.ones_like(as_ids(p)), do_sample=False, max_new_tokens=n_new, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.pad_token_id)[0, as_ids(p).shape[1]:].tolist() for p in prompts]

def varied_model(arch:str):
    "A tiny model whose weights are drawn wider than at initialisation, so that its answers differ from prompt to prompt."
    model, tok = load_model(tiny_model(arch), quant=None, dtype=torch.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1: p.normal_(0, 0.1)
    return model, tok

@pytest.mark.parametrize('shared', [True, False])
@pytest.mark.parametrize('arch', TINY_ARCHS)
def test_decoding_equals_transformers_generate_as_answers_end(arch, shared, monkeypatch):
    "ftbook's decoding loop (one batch of prompts of different lengths, with and without the shared prefix's cache) gives token for token what transformers' `generate` gives each prompt alone, with an EOS that ends the answers at different steps: an answer that ends leaves the batch and the others go on unchanged."
    if not shared: monkeypatch.setattr('ftbook.system.SHARED_MIN', 10**6)  # no prefix is long enough: plain left-padded batches
    model, tok = varied_model(arch)
    system = System(arch, model, tok, LONG)
    prompts = system.prompts(NOTES)
    free = transformers_tokens(model, tok, prompts, 16)
    ends = lambda t: {f.index(t) if t in f else 16 for f in free}  # where the answers would end with t as EOS
    tok.eos_token = tok.convert_ids_to_tokens(max((t for f in free for t in f), key=lambda t: len(ends(t))))  # the token ending them at the most different steps
    n_prompt = [len(i) for i in tok(prompts, add_special_tokens=False)['input_ids']]
    ref = [_answer(tok, new, n) for new, n in zip(transformers_tokens(model, tok, prompts, 16), n_prompt)]
    assert any(a['stopped'] for a in ref) and len({a['new_tokens'] for a in ref}) > 1  # answers end at different steps
    assert system.generate(NOTES, max_new_tokens=16, batch_size=len(NOTES)) == ref
    assert all(a['new_tokens'] == 16 for a in system.generate(NOTES, max_new_tokens=16, min_new_tokens=16, batch_size=len(NOTES)))  # EOS barred before 16

def test_decoding_applies_the_models_own_generation_config():
    "A repetition penalty and no-repeat n-grams in the model's generation_config change the answers, as in transformers' `generate`; a processor ftbook does not apply is named in a warning."
    model, tok = varied_model('llama')
    system = System('llama', model, tok, LONG)
    plain = system.generate(NOTES, max_new_tokens=16, batch_size=len(NOTES))
    model.generation_config.repetition_penalty, model.generation_config.no_repeat_ngram_size = 1.5, 2
    n_prompt = [len(i) for i in tok(system.prompts(NOTES), add_special_tokens=False)['input_ids']]
    ref = [_answer(tok, new, n) for new, n in zip(transformers_tokens(model, tok, system.prompts(NOTES), 16), n_prompt)]
    got = system.generate(NOTES, max_new_tokens=16, batch_size=len(NOTES))
    assert got == ref and got != plain
    model.generation_config.suppress_tokens = [5]
    with pytest.warns(UserWarning, match='suppress_tokens, which ftbook'): system.generate(NOTES[:1], max_new_tokens=2)

def test_sampling_filters_are_those_of_transformers():
    "Rows at temperature 0 take the most likely token; sampled rows keep only what top-k or top-p leave: with one token left, the most likely."
    torch.manual_seed(0)
    logits = torch.randn(6, 50)
    hot = torch.tensor([0, 0.7, 0.7, 1.0, 1.0, 0])
    test = lambda **kw: _next_tokens(logits.clone(), hot, **kw)
    assert torch.equal(test(top_p=1.0, top_k=1), logits.argmax(-1))
    assert torch.equal(test(top_p=1e-6, top_k=0), logits.argmax(-1))
    sampled = torch.stack([test(top_p=1.0, top_k=3) for _ in range(50)])
    assert all(set(sampled[:, i].tolist()) <= set(logits[i].topk(3).indices.tolist()) for i in range(6))  # only the top 3
    assert (sampled[:, hot > 0] != logits.argmax(-1)[hot > 0]).any() and (sampled[:, hot == 0] == logits.argmax(-1)[hot == 0]).all()

def test_candidates_keep_the_answer_the_score_prefers(tiny):
    "With candidates=3 the first candidate is the greedy answer, the others are sampled; the one with the highest score is kept, the same on a second run."
    greedy = tiny.generate(NOTES, max_new_tokens=12)
    score = lambda record, answer: (len(answer), answer)  # any function of the record and the answer: here, the longest answer wins
    chosen = tiny.generate(NOTES, max_new_tokens=12, candidates=3, score=score)
    for g, c in zip(greedy, chosen):
        assert len(c['candidate_scores']) == 3 and c['candidate_scores'][0] == (len(g['text']), g['text'])  # candidate 0 is the greedy answer
        assert (len(c['text']), c['text']) == max(c['candidate_scores']) == c['candidate_scores'][c['candidate']]
    assert any(c['candidate'] > 0 for c in chosen)  # sampling found a longer answer somewhere
    assert tiny.generate(NOTES, max_new_tokens=12, candidates=3, score=score) == chosen  # seeded: repeatable
    with pytest.raises(ValueError, match='needs a score'): tiny.generate(NOTES, max_new_tokens=4, candidates=2)
    with pytest.raises(ValueError, match='needs a score'): compare([tiny], NOTES, [Rouge()], candidates=2)
    with pytest.raises(ValueError, match='one answer'): tiny.reply([dict(role='user', content='Cough.')], candidates=2)

def test_shared_prefix_needs_two_prompts_and_leaves_each_a_token():
    model, tok = load_model(tiny_model('llama'), quant=None, dtype=torch.float32)
    ids = tok(System('t', model, tok, LONG).prompts(NOTES), add_special_tokens=False)['input_ids']
    assert shared_prefix(model, ids[:1]) is None                  # one prompt: nothing to share
    assert shared_prefix(model, [ids[0][:5], ids[1][:5]]) is None  # too short to be worth a cache
    head, _ = shared_prefix(model, [ids[0], ids[0]])                # the same prompt twice: its last token stays its own
    assert head == ids[0][:-1]

def adapter_run(tmp_path, arch='llama'):
    "A run folder as training leaves it: a LoRA adapter (random B, so it changes the answers) on the tiny model in 4 bits, with tokenizer and template."
    model, tok = load_model(tiny_model(arch))
    peft = random_lora(model)
    peft.save_pretrained(tmp_path/'adapter'); tok.save_pretrained(tmp_path/'adapter')
    (tmp_path/'adapter'/'template.json').write_text(json.dumps(LONG.to_dict()))
    return tmp_path/'adapter'

def test_dequantized_system_is_the_4bit_model_with_its_adapter(tmp_path):
    """load_system's default: the 4-bit weights dequantized, the adapter merged in: a plain model with the logits and answers of the 4-bit one.
    Exactly so on a CPU without bf16 arithmetic. On one with it (an AMD EPYC with AVX512-BF16, measured) the two round differently: logits
    up to 0.13 apart in bfloat16 compute and 0.01 in float32, and greedy answers of this random tiny model not always the same; there the
    test asks only that the logits stay close."""
    adapter = adapter_run(tmp_path)
    fast, exact = load_system(adapter), load_system(adapter, dequantize=False)
    assert not four_bit(fast.model) and not hasattr(fast.model, 'peft_config') and fast.model.merged_adapter == str(adapter)
    assert four_bit(exact.model) and hasattr(exact.model, 'peft_config')
    ids = torch.tensor([fast.tok(fast.prompts(NOTES[:1])[0], add_special_tokens=False)['input_ids']])
    exact_kernels = not cpu_has_bf16()
    with torch.no_grad(): assert torch.allclose(fast.model(input_ids=ids).logits, exact.model(input_ids=ids).logits, atol=1e-4 if exact_kernels else 0.3)
    base_fast, base_exact = base_system(adapter), base_system(adapter, dequantize=False)
    assert not four_bit(base_fast.model) and four_bit(base_exact.model)
    if exact_kernels:
        test_answers = lambda s: s.generate(NOTES, max_new_tokens=12, batch_size=4)
        assert test_answers(fast) == test_answers(exact) and test_answers(base_fast) == test_answers(base_exact)

def test_too_little_memory_keeps_the_model_in_4_bits(tmp_path):
    "Where the dequantized weights would not fit, the model stays in 4 bits (same answers, slower), with a warning saying why."
    model, _ = load_model(tiny_model('llama'))
    with pytest.warns(UserWarning, match='Kept the model in 4 bits: dequantized, its 14 4-bit layers would take'):
        kept = dequantized(model, memory_share=1e-12)
    assert kept is model and four_bit(model)
