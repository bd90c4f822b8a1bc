"""The bad-input corpus: one table of the inputs a user gets wrong, from data files to the command line.

Every row that is an error asserts four things:

1. It fails: the Python call raises, or the `ftbook` command (run as a real subprocess) exits non-zero.
2. The message names the problem and says how to fix it: each row lists a few words of both, all of which must appear.
3. It is ftbook's message, not a library's traceback. For Python calls the criterion is: the frame that raised the
   exception is in the ftbook package (the last traceback frame's file is under `ftbook/`) and the message holds the row's
   words, which ftbook writes (so an exception from inside transformers, or one ftbook lets through with the library's
   own text, fails the row). For the command line: no 'Traceback' in stderr, stderr is at most a few lines, and its first
   line starts with 'ftbook <command>:'.
4. Nothing is half-written: every file under the case's folder (inputs, and the folders the call would write to) is
   the same after the failed call as before it, and the output the call would have written does not exist.

Two kinds of rows are not errors by design, and assert what ftbook does instead: duplicate, conflicting and empty pairs
are reported by `pair_report` (kind 'report'), and a tokenizer without a pad token or chat template is given one
(kind 'fine').

The command-line rows cost a Python start each (about 5 s of CPU: torch, transformers, peft), so they are few, and all
of them start together in the background on first use; each row then checks its own process.
"""
import copy, hashlib, json, os, shutil, subprocess, sys, traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
import pandas as pd, pytest, torch, yaml
import ftbook
from ftbook.cli import parse_overrides
from ftbook.data import PromptTemplate, make_pairs, pair_report, prompt_text, split_pairs, tokenize_pairs
from ftbook.system import System, load_system
from ftbook.eval import Rouge, compare
from ftbook.ship import export
from ftbook.review import Reviews
from ftbook.quant import load_model
from ftbook.model import load_tokenizer, prepare_tokenizer
from ftbook.testing import chat_tokenizer, tiny_model
from ftbook.training import train
from ftbook.config import DataSettings, ModelSettings, RunConfig

PKG = Path(ftbook.__file__).parent
FTBOOK = Path(sys.executable).parent/'ftbook'
T = PromptTemplate('Q: {q}', '{a}')
NOTE = dict(note='Cough for 3 days, no fever.', summary='Patient: adult\nProblem: cough\nPlan: rest')
EVAL_RESULTS = json.dumps(dict(settings={}, summary=[dict(system='fine-tuned', review=1.0)], examples=[dict(  # an evaluation as save_results writes it
    system='fine-tuned', example=0, output='Cough for 5 days.', reference='', source=NOTE['note'], unsupported=1, review=1.0, unsupported_claims='5')]))

@dataclass
class Case:
    "One row of the corpus."
    id:str
    kind:str                   # 'api' (raises), 'cli' (exits non-zero), 'report' (flagged by pair_report), 'fine' (repaired)
    words:list                 # what the message must say: the problem and the fix
    call:object = None         # api/report/fine: (d, fx) -> result; cli: (d, fx) -> argv after `ftbook`
    files:dict = field(default_factory=dict)  # inputs written into the case folder first: name -> text or bytes
    prep:object = None         # (d, fx) -> None: more set-up (model folders, adapters)
    out:str|None = None        # what the call would write, relative to the case folder: must not exist afterwards
    error:type = Exception     # the exception class expected (api)

# --- fixtures: one tiny model, tokenizer and adapter for the whole module ---------------------------------------------

@pytest.fixture(scope='module')
def fx(tmp_path_factory):
    threads = torch.get_num_threads(); torch.set_num_threads(1)  # a shared 2-core machine: one thread is faster for a 2-layer model
    tiny = tiny_model('llama')
    model, tok = load_model(tiny, quant=None, dtype=torch.float32)
    adapter = tmp_path_factory.mktemp('adapter')/'run'/'adapter'
    from peft import LoraConfig, get_peft_model
    base, _ = load_model(tiny, quant=None, dtype=torch.float32)
    get_peft_model(base, LoraConfig(r=2, target_modules='all-linear', task_type='CAUSAL_LM')).save_pretrained(adapter)
    tok.save_pretrained(adapter)  # as a training run saves it, but without template.json
    from transformers import AutoTokenizer
    yield SimpleNamespace(tiny=tiny, model=model, tok=tok, system=System('tiny', model, tok, T), adapter=adapter,
                          raw_tok=AutoTokenizer.from_pretrained(tiny))
    torch.set_num_threads(threads)

def model_copy(d:Path, fx, name:str='model', drop:tuple=(), **write)->Path:
    "A copy of the tiny model in the case folder, without the files `drop` and with `write` (file name with '.' as '__')."
    dest = d/name
    shutil.copytree(fx.tiny, dest)
    for f in drop: (dest/f).unlink()
    for f, content in write.items():
        p = dest/f.replace('__', '.')
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return dest

def config_yaml(d:Path, fx, **sections)->str:
    "A valid YAML run config over records.jsonl in the case folder, with `sections` merged in."
    cfg = dict(output_dir=str(d/'run'), model=dict(name=str(fx.tiny)),
               data=dict(path=str(d/'records.jsonl'), template=dict(prompt='{q}', completion='{a}'), max_len=64))
    for k, v in sections.items(): cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return yaml.safe_dump(cfg)

def write_config(d:Path, fx, name:str='config.yaml', **sections)->Path:
    (d/name).write_text(config_yaml(d, fx, **sections)); return d/name

RECORDS = ''.join(json.dumps(dict(q=f'What is {i} plus {i}?', a=f'{2*i}.')) + '\n' for i in range(12))

def run_config(d:Path, fx, **changes)->RunConfig:
    "A tiny-model RunConfig writing to the case folder's run/."
    return RunConfig(output_dir=str(d/'run'), model=ModelSettings(name=str(fx.tiny)), data=DataSettings(template=T, max_len=64)).override(changes)

def gpt2_adapter(d:Path)->Path:
    "A LoRA adapter on the tiny GPT-2 model, an architecture ftbook cannot write as GGUF."
    from peft import LoraConfig, get_peft_model
    base, _ = load_model(tiny_model('gpt2'), quant=None, dtype=torch.float32)
    get_peft_model(base, LoraConfig(r=2, target_modules='all-linear', task_type='CAUSAL_LM')).save_pretrained(d/'run'/'adapter')
    return d/'run'/'adapter'

def adapter_copy(d:Path, fx, drop:tuple=(), **write)->Path:
    dest = d/'run'/'adapter'
    shutil.copytree(fx.adapter, dest)
    for f in drop: (dest/f).unlink()
    for f, content in write.items(): (dest/f.replace('__', '.')).write_text(content)
    return dest

def say(role, text, **kw): return dict(role=role, content=text, **kw)

def chat_lines(messages)->str:
    "A JSONL file of conversations: a good one on line 1, `messages` on line 2."
    return json.dumps({'messages': [say('user', 'Hi'), say('assistant', 'Hello.')]}) + '\n' + json.dumps({'messages': messages}) + '\n'

PAIRS = [dict(prompt=f'What is {i} plus {i}?', completion=f'{2*i}.', system=None) for i in range(6)]

def turn(who, text, **kw): return {'from': who, 'value': text, **kw}

def sharegpt_lines(*records)->str:
    "A JSONL file of ShareGPT records: a good conversation on line 1, then `records` (each a list of turns, or a whole record)."
    good = {'conversations': [turn('human', 'Hi'), turn('gpt', 'Hello.')]}
    return ''.join(json.dumps(r if isinstance(r, dict) else {'conversations': r}) + '\n' for r in (good, *records))

ALPACA = json.dumps(dict(instruction='Add 2 and 2.', input='', output='4.')) + '\n'

def parquet(d:Path, name:str, rows:list, columns:list|None=None):
    "Write `rows` (dicts) as a Parquet file in the case folder, with `columns` when there are no rows."
    pd.DataFrame(rows, columns=columns).to_parquet(d/name)

# --- the corpus --------------------------------------------------------------------------------------------------------

CASES = [
    # data files (JSONL/CSV)
    Case('data/missing-file', 'api', ['nope.jsonl does not exist', 'Check the path'], lambda d, fx: make_pairs(d/'nope.jsonl', T), error=FileNotFoundError),
    Case('data/empty-jsonl', 'api', ['e.jsonl is empty', 'one record per line'], lambda d, fx: make_pairs(d/'e.jsonl', T), {'e.jsonl': '\n  \n'}, error=ValueError),
    Case('data/empty-csv', 'api', ['e.csv is empty', 'per row'], lambda d, fx: make_pairs(d/'e.csv', T), {'e.csv': ''}, error=ValueError),
    Case('data/header-only-csv', 'api', ['holds no records', 'Add records'], lambda d, fx: make_pairs(d/'h.csv', T), {'h.csv': 'q,a\n'}, error=ValueError),
    Case('data/malformed-json-line', 'api', ['m.jsonl, line 2, column', 'not valid JSON', 'fix or remove that line'],
         lambda d, fx: make_pairs(d/'m.jsonl', T), {'m.jsonl': '{"q": "x", "a": "y"}\n{"q": "x", "a": \n'}, error=ValueError),
    Case('data/json-array-line', 'api', ['line 1: a JSON list', 'must be an object'],
         lambda d, fx: make_pairs(d/'l.jsonl', T), {'l.jsonl': '[{"q": "x", "a": "y"}]\n'}, error=ValueError),
    Case('data/wrong-columns-csv', 'api', ["line 2 of", "no field ['a', 'q']", "the record has ['answer', 'question']", 'Rename the column, or change the template'],
         lambda d, fx: make_pairs(d/'w.csv', T), {'w.csv': 'question,answer\nx,y\n'}, error=KeyError),
    Case('data/empty-csv-cell', 'api', ['line 3 of', "field 'a' is empty", 'Fill it in, or drop that record'],
         lambda d, fx: make_pairs(d/'n.csv', T), {'n.csv': 'q,a\nx,y\nz,\n'}, error=ValueError),
    Case('data/json-null', 'api', ['line 1 of', "field 'q' is empty", 'Fill it in'],
         lambda d, fx: make_pairs(d/'n.jsonl', T), {'n.jsonl': '{"q": null, "a": "y"}\n'}, error=ValueError),
    Case('data/json-NaN', 'api', ['line 2 of', "field 'a' is empty (NaN/None)", 'drop that record'],
         lambda d, fx: make_pairs(d/'n.jsonl', T), {'n.jsonl': '{"q": "x", "a": "y"}\n{"q": "x", "a": NaN}\n'}, error=ValueError),
    Case('data/non-text-list', 'api', ["field 'q' is a list", 'not text', 'Turn it into text first'],
         lambda d, fx: make_pairs(d/'t.jsonl', T), {'t.jsonl': '{"q": ["steel", "350 ml"], "a": "y"}\n'}, error=TypeError),
    Case('data/non-text-object', 'api', ["field 'a' is a dict", 'Turn it into text first'],
         lambda d, fx: make_pairs(d/'t.jsonl', T), {'t.jsonl': '{"q": "x", "a": {"text": "y"}}\n'}, error=TypeError),
    Case('data/folder-not-file', 'api', ['data.jsonl is a folder', 'pass one .jsonl, .csv or .parquet file inside it'],
         lambda d, fx: make_pairs(d/'data.jsonl', T), prep=lambda d, fx: (d/'data.jsonl').mkdir(), error=IsADirectoryError),
    Case('data/wrong-extension', 'api', ['data.json', 'reads .jsonl, .csv and .parquet files', 'convert it'],
         lambda d, fx: make_pairs(d/'data.json', T), {'data.json': '[{"q": "x", "a": "y"}]'}, error=ValueError),
    Case('data/binary-garbage', 'api', ['b.jsonl, line', 'is not valid utf-8', 'Re-save the file as UTF-8'],
         lambda d, fx: make_pairs(d/'b.jsonl', T), {'b.jsonl': bytes(range(256))*8}, error=ValueError),
    Case('data/utf16-bom', 'api', ['not valid utf-8', "encoding='utf-16'", 'byte-order mark'],
         lambda d, fx: make_pairs(d/'u.csv', T), {'u.csv': 'q,a\nx,y\n'.encode('utf-16')}, error=ValueError),
    Case('data/latin1-bytes', 'api', ['line 2', 'byte 0xe9 is not valid utf-8', "encoding='latin-1'"],
         lambda d, fx: make_pairs(d/'l.jsonl', T), {'l.jsonl': '{"q": "x", "a": "y"}\n{"q": "caf\xe9", "a": "y"}\n'.encode('latin-1')}, error=ValueError),
    Case('data/unknown-encoding', 'api', ["encoding='utf-99'", 'not an encoding Python knows', "'latin-1'"],
         lambda d, fx: make_pairs(d/'ok.jsonl', T, encoding='utf-99'), {'ok.jsonl': '{"q": "x", "a": "y"}\n'}, error=ValueError),
    Case('data/csv-unquoted-comma', 'api', ['r.csv, line 3: 3 fields', 'header names 2', 'double quotes'],
         lambda d, fx: make_pairs(d/'r.csv', T), {'r.csv': 'q,a\nx,y\nsteel, 350 ml,A mug.\n'}, error=ValueError),
    Case('data/overlong-raise', 'api', ['pair 1 has', 'more than max_len=80', 'raise max_len'],
         lambda d, fx: tokenize_pairs([PAIRS[0], dict(PAIRS[1], completion='word '*60)], fx.tok, T, max_len=80, overlong='raise'), error=ValueError),
    Case('data/template-unbalanced-brace', 'api', ["PromptTemplate.prompt = 'Q: {q'", "expected '}'", 'double a literal brace'],
         lambda d, fx: PromptTemplate('Q: {q', '{a}'), error=ValueError),
    Case('data/template-unnamed-field', 'api', ["PromptTemplate.completion = 'A: {}'", 'a field without a name', 'Name each record field'],
         lambda d, fx: PromptTemplate('{q}', 'A: {}'), error=ValueError),
    Case('data/pairs-not-dicts', 'api', ["pair 0 is 'What is 1 plus 1?'", 'must be a dict', 'make_pairs(records, template)'],
         lambda d, fx: split_pairs(['What is 1 plus 1?', 'What is 2 plus 2?'], val=0.5), error=TypeError),
    # conversations ({"messages": [...]}, OpenAI's format): what ftbook cannot train on names the file's line and the fix
    *[Case(f'chat/{name}', 'api', ['c.jsonl', *words], lambda d, fx: make_pairs(d/'c.jsonl'), {'c.jsonl': chat_lines(messages)}, error=ValueError)
      for name, messages, words in [
        ('messages-not-a-list', 'hello', ['line 2', "'messages' must be a non-empty list"]),
        ('messages-empty', [], ['line 2', "'messages' must be a non-empty list"]),
        ('message-not-an-object', ['hello'], ['line 2', 'message 0 is a str', 'not an object like']),
        ('unknown-role', [say('customer', 'Hi'), say('assistant', 'Hello.')], ['line 2', "message 0 has role 'customer'", "use 'system', 'user' or 'assistant'"]),
        ('tool-call', [say('user', 'Weather?'), dict(role='assistant', content=None, tool_calls=[{'id': 'c1'}])], ['line 2', 'message 1 is a tool call', 'Drop the tool messages']),
        ('tool-result', [say('user', 'Weather?'), say('tool', 'sunny'), say('assistant', 'Sunny.')], ['line 2', 'message 1 is a tool call or a tool', 'text turns only']),
        ('image', [dict(role='user', content=[{'type': 'image_url', 'image_url': {'url': 'x.png'}}]), say('assistant', 'A cat.')], ['line 2', 'message 0 holds an image', 'Keep only text parts']),
        ('answer-null', [say('user', 'Hi'), say('assistant', None)], ['line 2', 'message 1 (assistant) has no content', 'write its text, or drop the message']),
        ('answer-blank', [say('user', 'Hi'), say('assistant', '  ')], ['line 2', 'message 1 (assistant) has no content']),
        ('unknown-key', [say('user', 'Hi', name='Ann'), say('assistant', 'Hello.')], ['line 2', "keys ['name'] that ftbook does not read", "keep ['role', 'content', 'weight']"]),
        ('weight-not-0-or-1', [say('user', 'Hi'), say('assistant', 'Hello.', weight=0.5)], ['line 2', 'weight 0.5', 'a weight is 0 or 1']),
        ('weight-on-user', [say('user', 'Hi', weight=1), say('assistant', 'Hello.')], ['line 2', 'on assistant messages only']),
        ('system-not-first', [say('user', 'Hi'), say('system', 'Be brief.'), say('assistant', 'Hello.')], ['line 2', 'a system message after the first', 'put the one system message first']),
        ('assistant-first', [say('assistant', 'Welcome!'), say('user', 'Hi'), say('assistant', 'Hello.')], ['line 2', 'the assistant speaks first', "start with the user's turn"]),
        ('text-part-without-text', [dict(role='user', content=[{'type': 'text'}]), say('assistant', 'Hello.')], ['line 2', 'a text part without text', '"text" string']),
        ('content-a-number', [say('user', 5), say('assistant', 'Hello.')], ['line 2', 'has content 5', 'content is text']),
        ('only-system', [say('system', 'Be brief.')], ['line 2', 'only a system message', "add the user's turn and the answer"]),
        ('no-assistant', [say('user', 'Hi'), say('user', 'Anyone?')], ['line 2', 'no assistant message', 'needs one']),
        ('ends-with-user', [say('user', 'Hi'), say('assistant', 'Hello.'), say('user', 'Bye')], ['line 2', 'ends with a user message', 'add the answer, or drop that message']),
        ('all-weights-zero', [say('user', 'Hi'), say('assistant', 'Hello.', weight=0)], ['line 2', 'every assistant message has weight 0', 'set weight 1'])]],
    Case('chat/template-not-prefix-stable', 'api', ['line 2 of', 'not prefix-stable at message 2', 'will not guess', "one record per turn"],
         lambda d, fx: tokenize_pairs(make_pairs(d/'c.jsonl'), chat_tokenizer('mistral'), PromptTemplate()),
         {'c.jsonl': chat_lines([say('system', 'Be brief.'), say('user', 'Hi'), say('assistant', 'Hello.'), say('user', 'Bye'), say('assistant', 'Bye!')])},
         error=ValueError),
    Case('chat/template-refuses-system', 'api', ['line 2 of', "chat template refuses these messages (System role not supported)", 'Change the conversation'],
         lambda d, fx: tokenize_pairs(make_pairs(d/'c.jsonl'), chat_tokenizer('gemma'), PromptTemplate()),
         {'c.jsonl': chat_lines([say('system', 'Be brief.'), say('user', 'Hi'), say('assistant', 'Hello.')])}, error=ValueError),
    Case('chat/template-strips-answer', 'api', ['line 2 of', 'changes assistant message 1', 'remove them from the data'],
         lambda d, fx: tokenize_pairs(make_pairs(d/'c.jsonl'), chat_tokenizer('llama3'), PromptTemplate()),
         {'c.jsonl': chat_lines([say('user', 'Hi'), say('assistant', 'Hello.\n')])}, error=ValueError),
    Case('cli/eval-conversation-with-tool-call', 'cli', ['c.jsonl', 'line 2', 'message 1 is a tool call', 'Drop the tool messages'],
         lambda d, fx: ['eval', '--adapter', str(d/'run'/'adapter'), '--data', str(d/'c.jsonl'), '--no-base', '--max-new-tokens', '2'],
         {'c.jsonl': chat_lines([say('user', 'Weather?'), dict(role='assistant', content=None, tool_calls=[{'id': 'c1'}])])},
         prep=lambda d, fx: adapter_copy(d, fx), out='run/eval-c'),
    Case('cli/eval-metric-not-on-the-menu', 'cli', ["metric 'bleu' is not on the menu", 'Choose from', 'unsupported'],
         lambda d, fx: ['eval', '--adapter', str(d/'run'/'adapter'), '--data', str(d/'c.jsonl'), '--metric', 'rouge', 'bleu'],
         {'c.jsonl': chat_lines([say('user', 'Hi'), say('assistant', 'Hello.')])}, out='run/eval-c'),
    Case('cli/review-not-an-evaluation', 'cli', ['results.json does not exist', 'pass a folder written by save_results'],
         lambda d, fx: ['review', str(d/'run'), '--out', str(d/'reviews.jsonl')], out='reviews.jsonl'),
    Case('cli/review-file-not-reviews', 'cli', ['notes.jsonl, line 1: not JSON', 'not a reviews file'],
         lambda d, fx: ['review', str(d/'eval'), '--out', str(d/'notes.jsonl')], {'eval/results.json': EVAL_RESULTS, 'notes.jsonl': 'Cough for 3 days\n'}),
    Case('cli/review-unknown-system', 'cli', ["system='base'", "choose one of the evaluated systems ['fine-tuned']"],
         lambda d, fx: ['review', str(d/'eval'), '--out', str(d/'reviews.jsonl'), '--system', 'base'], {'eval/results.json': EVAL_RESULTS}, out='reviews.jsonl'),
    Case('cli/review-preferences-are-the-reviews', 'cli', ['--preferences', 'is the reviews file (--out)', 'a file of their own'],
         lambda d, fx: ['review', str(d/'eval'), '--out', str(d/'reviews.jsonl'), '--preferences', str(d/'reviews.jsonl')], {'eval/results.json': EVAL_RESULTS}, out='reviews.jsonl'),
    Case('cli/train-dpo-without-rejected', 'cli', ['records.jsonl', 'line 1', "no field ['chosen', 'rejected']", "'rejected' (the answer to avoid)"],
         lambda d, fx: ['train', str(write_config(d, fx, train={'method': 'dpo'}))], {'records.jsonl': RECORDS}, out='run'),
    Case('cli/review-records-are-the-reviews', 'cli', ['is the reviews file (--out)', 'a file of their own'],
         lambda d, fx: ['review', str(d/'eval'), '--out', str(d/'reviews.jsonl'), '--records', str(d/'reviews.jsonl')], {'eval/results.json': EVAL_RESULTS}, out='reviews.jsonl'),
    Case('cli/review-records-unknown-fields', 'cli', ["do not make records on their own", "names no input field or template", "reviewed_records(reviews, 'note', 'summary')"],
         lambda d, fx: ['review', str(d/'eval'), '--out', str(d/'reviews.jsonl'), '--records', str(d/'fixes.jsonl')], {'eval/results.json': EVAL_RESULTS}, out='reviews.jsonl'),
    Case('cli/chat-not-a-run', 'cli', ['does not exist', "adapter/ or merged/ folder"], lambda d, fx: ['chat', str(d/'run'/'adapter')]),
    # ShareGPT, Alpaca and Parquet files: converted when read; what cannot be is refused with its line (or row) and the layout expected
    *[Case(f'formats/sharegpt-{name}', 'api', ['s.jsonl', 'line 2', *words], lambda d, fx: make_pairs(d/'s.jsonl'), {'s.jsonl': sharegpt_lines(record)}, error=ValueError)
      for name, record, words in [
        ('unknown-role', [turn('human', 'Hi'), turn('bot', 'Hello.')], ["turn 1 is from 'bot'", "from 'human', 'gpt' or, first, 'system'", 'Rename the speaker']),
        ('gpt-first', [turn('gpt', 'Welcome!'), turn('human', 'Hi'), turn('gpt', 'Hello.')], ['gpt -> assistant', 'the assistant speaks first', "start with the user's turn"]),
        ('empty-value', [turn('human', 'Hi'), turn('gpt', '')], ['message 1 (assistant) has no content', 'write its text, or drop the message']),
        ('ends-with-human', [turn('human', 'Hi'), turn('gpt', 'Hello.'), turn('human', 'Bye')], ['ends with a user message', 'add the answer']),
        ('system-not-first', [turn('human', 'Hi'), turn('system', 'Be brief.'), turn('gpt', 'Hello.')], ['a system message after the first', 'put the one system message first']),
        ('conversations-not-a-list', {'conversations': 'Hi'}, ["'conversations' must be a non-empty list", '"from": "human"']),
        ('unknown-turn-key', [turn('human', 'Hi', markdown=True), turn('gpt', 'Hello.')], ["turn 0 has keys ['markdown']", "keep 'from' and 'value'"]),
        ('system-beside-turns', {'system': 'Be brief.', 'conversations': [turn('human', 'Hi'), turn('gpt', 'Hello.')]}, ["also has ['system']", 'as its first turn']),
        ('then-alpaca', json.loads(ALPACA), ["not a ShareGPT record: it has ['input', 'instruction', 'output'] (an Alpaca record)", 'line 1 is one', 'format=None'])]],
    Case('formats/alpaca-no-output', 'api', ['a.jsonl', 'line 2', "not an Alpaca record: it has ['input', 'instruction']", '"output": "..."', 'line 1 is one'],
         lambda d, fx: make_pairs(d/'a.jsonl'), {'a.jsonl': ALPACA + '{"instruction": "Add 3 and 3.", "input": ""}\n'}, error=ValueError),
    Case('formats/alpaca-with-history', 'api', ['a.jsonl', 'line 2', "also has ['history']", "as a conversation ('messages')", 'format=None'],
         lambda d, fx: make_pairs(d/'a.jsonl'), {'a.jsonl': ALPACA + '{"instruction": "And 3?", "input": "", "output": "6.", "history": [["Add 2 and 2.", "4."]]}\n'},
         error=ValueError),
    Case('formats/alpaca-named-on-sharegpt', 'api', ["format='alpaca' was given", 'line 1 of', "not an Alpaca record: it has ['conversations'] (a ShareGPT record)", '"instruction"'],
         lambda d, fx: make_pairs(ftbook.read_records(d/'s.jsonl', format='alpaca')), {'s.jsonl': sharegpt_lines()}, error=ValueError),
    Case('formats/unknown-format-name', 'api', ["format='openai'", "'sharegpt', 'alpaca', or None"],
         lambda d, fx: ftbook.read_records(d/'s.jsonl', format='openai'), {'s.jsonl': sharegpt_lines()}, error=ValueError),
    Case('formats/parquet-no-usable-column', 'api', ['t.parquet', 'row 0 of', "no field ['prompt']", "the record has ['label', 'text']", "'conversations' (ShareGPT)", 'PromptTemplate('],
         lambda d, fx: make_pairs(d/'t.parquet'), prep=lambda d, fx: parquet(d, 't.parquet', [dict(text='Hi', label='greeting'), dict(text='Bye', label='farewell')]),
         error=KeyError),
    Case('formats/parquet-empty', 'api', ['e.parquet holds no records', 'Add records'],
         lambda d, fx: make_pairs(d/'e.parquet'), prep=lambda d, fx: parquet(d, 'e.parquet', [], ['instruction', 'input', 'output']), error=ValueError),
    Case('formats/parquet-not-parquet', 'api', ['p.parquet is not a Parquet file ftbook can read', 'Copy it again whole'],
         lambda d, fx: make_pairs(d/'p.parquet'), {'p.parquet': '{"prompt": "Hi", "completion": "Hello."}\n'}, error=ValueError),
    Case('formats/parquet-sharegpt-gpt-first', 'api', ['s.parquet', 'row 1 of', 'the assistant speaks first'],
         lambda d, fx: make_pairs(d/'s.parquet'),
         prep=lambda d, fx: parquet(d, 's.parquet', [{'conversations': [turn('human', 'Hi'), turn('gpt', 'Hello.')]}, {'conversations': [turn('gpt', 'Hi'), turn('human', 'Hello.')]}]),
         error=ValueError),
    Case('formats/parquet-mixed', 'api', ['m.parquet', 'row 1 of', 'not an Alpaca record', '(a ShareGPT record)', 'row 0 is one'],
         lambda d, fx: make_pairs(d/'m.parquet'),
         prep=lambda d, fx: parquet(d, 'm.parquet', [json.loads(ALPACA), {'conversations': [turn('human', 'Hi'), turn('gpt', 'Hello.')]}]), error=ValueError),
    Case('cli/train-sharegpt-unknown-role', 'cli', ['records.jsonl', 'line 2', "turn 1 is from 'bot'", 'Rename the speaker'],
         lambda d, fx: ['train', str(write_config(d, fx, data=dict(template=dict(prompt='{prompt}', completion='{completion}'))))],  # the plain template: converted
         {'records.jsonl': sharegpt_lines([turn('human', 'Hi'), turn('bot', 'Hello.')])}, out='run'),
    # plain pairs name their record's line as conversations do, not "pair i" or "the prompt"
    Case('data/overlong-raise-names-the-line', 'api', ['long.jsonl has', 'line 2 of', 'more than max_len=80', 'raise max_len'],
         lambda d, fx: tokenize_pairs(make_pairs(d/'long.jsonl', T), fx.tok, T, max_len=80, overlong='raise'),
         {'long.jsonl': RECORDS.split('\n')[0] + '\n' + json.dumps(dict(q='Say it.', a='word '*60)) + '\n'}, error=ValueError),
    Case('data/template-refuses-a-plain-pair', 'api', ['line 1 of', 'q.jsonl', 'chat template refuses these messages (System role not supported)'],
         lambda d, fx: tokenize_pairs(make_pairs(d/'q.jsonl', PromptTemplate('Q: {q}', '{a}', system='Be brief.')), chat_tokenizer('gemma'), PromptTemplate('Q: {q}', '{a}', system='Be brief.')),
         {'q.jsonl': RECORDS}, error=ValueError),
    # duplicates, conflicts and empty fields are not errors: the quality report flags them, with why they matter
    Case('data/duplicates-reported', 'report', ['exact_duplicates', [[0, 2]], 'learned twice as hard'],
         lambda d, fx: pair_report(make_pairs(d/'dup.jsonl', T), fx.tok, T)),
    Case('data/conflicts-reported', 'report', ['conflicts', [[0, 1]], 'hedge between them'],
         lambda d, fx: pair_report(make_pairs(d/'conf.jsonl', T), fx.tok, T)),
    Case('data/empty-completion-reported', 'report', ['empty', [1], 'answer with nothing'],
         lambda d, fx: pair_report(make_pairs(d/'blank.jsonl', T), fx.tok, T)),

    # run configs (YAML/JSON)
    Case('config/unknown-key', 'api', ["unknown setting 'lerning_rate'", "Known: ['epochs', 'lr'"],
         lambda d, fx: RunConfig.load(d/'config.yaml'), prep=lambda d, fx: write_config(d, fx, train={'lerning_rate': 1e-4}), error=ValueError),
    Case('config/misspelled-key', 'api', ["unknown setting 'epoch'", "did you mean 'epochs'"],
         lambda d, fx: RunConfig.load(d/'config.yaml'), prep=lambda d, fx: write_config(d, fx, train={'epoch': 2}), error=ValueError),
    Case('config/unknown-section', 'api', ["Unknown section 'trian'", "did you mean 'train'"],
         lambda d, fx: RunConfig.load(d/'config.yaml'), prep=lambda d, fx: write_config(d, fx, trian={'lr': 1e-4}), error=ValueError),
    Case('config/wrong-type', 'api', ["train.epochs = 'many'", 'expected', 'float'],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, train={'epochs': 'many'}), error=ValueError),
    Case('config/negative-lr', 'api', ['train.lr = -0.0002', 'must be positive'],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, train={'lr': -2e-4}), error=ValueError),
    Case('config/zero-batch', 'api', ['train.batch_size = 0', 'at least one row per step'],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, train={'batch_size': 0}), error=ValueError),
    Case('config/infinite-epochs', 'api', ['train.epochs = inf', 'positive, finite number of epochs'],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, train={'epochs': float('inf')}), error=ValueError),
    Case('config/every-problem-at-once', 'api', ['data.val = 1.5', 'lora.r = 0', "model.quant = 'int3'", 'in (0, 1)', 'at least 1', "use 'nf4'"],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, data={'val': 1.5}, lora={'r': 0}, model={'quant': 'int3'}), error=ValueError),
    Case('config/yaml-syntax', 'api', ['bad.yaml is not valid YAML', 'line 2', 'Fix it where the line and column'],
         lambda d, fx: RunConfig.load(d/'bad.yaml'), {'bad.yaml': 'train:\n\tlr: 0.001\n'}, error=ValueError),
    Case('config/json-syntax', 'api', ['bad.json is not valid JSON', 'line 1 column', 'Fix it where'],
         lambda d, fx: RunConfig.load(d/'bad.json'), {'bad.json': '{"train": {"lr": 0.001,}}'}, error=ValueError),
    Case('config/empty-file', 'api', ['empty.yaml is empty', 'RunConfig().save'],
         lambda d, fx: RunConfig.load(d/'empty.yaml'), {'empty.yaml': '\n'}, error=ValueError),
    Case('config/not-a-mapping', 'api', ['is a mapping with sections', 'not list'],
         lambda d, fx: RunConfig.load(d/'list.yaml'), {'list.yaml': '- train\n- lr\n'}, error=ValueError),
    Case('config/section-not-a-mapping', 'api', ['train must be a mapping of settings', 'not list'],
         lambda d, fx: RunConfig.load(d/'c.yaml'), {'c.yaml': 'train: [1, 2]\n'}, error=ValueError),
    Case('config/folder-not-file', 'api', ['is a folder', 'training config file'],
         lambda d, fx: RunConfig.load(d), error=IsADirectoryError),
    Case('config/binary-file', 'api', ['not a text file', 'pass a training config'],
         lambda d, fx: RunConfig.load(d/'c.yaml'), {'c.yaml': b'\x00\x01\xff\xfe' * 64}, error=ValueError),
    Case('config/set-without-equals', 'api', ["--set 'train.lr'", 'section.setting=value'],
         lambda d, fx: parse_overrides(['train.lr']), error=ValueError),
    Case('config/unknown-target-modules', 'api', ["['attention'] are not layers of this model", 'q_proj', "or use 'all-linear'"],
         lambda d, fx: train(run_config(d, fx, **{'lora.target_modules': ['q_proj', 'attention']}), [dict(q='What is 1 plus 1?', a='2.')]*6), out='run', error=ValueError),
    Case('config/missing-model', 'api', ['nowhere', 'neither a local folder nor reachable', 'Pass the path of a folder with config.json'],
         lambda d, fx: train(run_config(d, fx, **{'model.name': str(d/'nowhere')}), [dict(q='What is 1 plus 1?', a='2.')]*6), out='run', error=FileNotFoundError),
    Case('config/no-data', 'api', ['No training data', 'set data.path'],
         lambda d, fx: train(run_config(d, fx)), out='run', error=ValueError),
    Case('config/init-from-not-a-run', 'api', ['lora.init_from', 'neither a run folder', 'output_dir of a finished run'],
         lambda d, fx: train(run_config(d, fx, **{'lora.init_from': str(d/'nowhere')}), [dict(q='What is 1 plus 1?', a='2.')]*6), out='run', error=ValueError),
    Case('config/unknown-method', 'api', ["train.method = 'ppo'", "use 'sft'", "'dpo' (prefer the chosen answers"],
         lambda d, fx: RunConfig.load(d/'config.yaml').check(), prep=lambda d, fx: write_config(d, fx, train={'method': 'ppo'}), error=ValueError),
    Case('config/dpo-packed', 'api', ["data.packing = true with train.method = 'dpo'", 'pairs are not packed', 'data.packing: false'],
         lambda d, fx: train(run_config(d, fx, **{'train.method': 'dpo', 'data.packing': True}), [dict(q='1?', chosen='1.', rejected='2.')]*6),
         out='run', error=ValueError),
    Case('config/init-from-other-settings', 'api', ['has other settings', 'r: 16 here, 2 there', 'alpha: 32 here, 8 there', 'config.yaml for a run of ftbook'],
         lambda d, fx: train(run_config(d, fx, **{'lora.init_from': str(fx.adapter)}), [dict(q='What is 1 plus 1?', a='2.')]*6), out='run', error=ValueError),

    # model paths
    Case('model/missing-folder', 'api', ['gone', 'neither a local folder', 'Pass the path of a folder'],
         lambda d, fx: load_model(d/'gone', quant=None), error=FileNotFoundError),
    Case('model/no-config', 'api', ['has no config.json', "'model.safetensors'", 'save_pretrained'],
         lambda d, fx: load_model(d/'model', quant=None), prep=lambda d, fx: model_copy(d, fx, drop=['config.json']), error=FileNotFoundError),
    Case('model/corrupt-config', 'api', ['config.json is damaged', 'not valid JSON', 'Copy it again'],
         lambda d, fx: load_model(d/'model', quant=None), prep=lambda d, fx: model_copy(d, fx, config__json='{"model_type": "llama", '), error=ValueError),
    Case('model/config-without-model-type', 'api', ['config.json is damaged', 'names no model_type', 'save_pretrained'],
         lambda d, fx: load_model(d/'model', quant=None), prep=lambda d, fx: model_copy(d, fx, config__json='{"hidden_size": 64}'), error=ValueError),
    Case('model/not-a-causal-lm', 'api', ["'bert'", 'not a causal language model', 'Choose a decoder model'],
         lambda d, fx: load_model(d/'model', quant=None),
         prep=lambda d, fx: model_copy(d, fx, config__json='{"model_type": "bert", "architectures": ["BertModel"]}'), error=ValueError),
    Case('model/file-not-folder', 'api', ['config.json is a file', 'pass the model folder'],
         lambda d, fx: load_model(d/'model'/'config.json', quant=None), prep=lambda d, fx: model_copy(d, fx), error=NotADirectoryError),
    Case('model/weights-missing', 'api', ['has no *.safetensors weights', 'save_pretrained'],
         lambda d, fx: load_model(d/'model', quant=None), prep=lambda d, fx: model_copy(d, fx, drop=['model.safetensors']), error=FileNotFoundError),
    Case('model/weights-cut-short', 'api', ['model.safetensors is damaged', 'cut short', 'Copy it again'],
         lambda d, fx: load_model(d/'model', quant=None),
         prep=lambda d, fx: model_copy(d, fx, model__safetensors=(fx.tiny/'model.safetensors').read_bytes()[:100_000]), error=ValueError),
    Case('model/pickle-weights-only', 'api', ["['pytorch_model.bin']", 'unpickling runs arbitrary code', 'writes model.safetensors'],
         lambda d, fx: load_model(d/'model', quant=None),
         prep=lambda d, fx: (model_copy(d, fx)/'model.safetensors').rename(d/'model'/'pytorch_model.bin'), error=FileNotFoundError),

    # tokenizers
    Case('tokenizer/files-missing', 'api', ['has no tokenizer', 'tokenizer.json', 'save_pretrained'],
         lambda d, fx: load_model(d/'model', quant=None), prep=lambda d, fx: model_copy(d, fx, drop=['tokenizer.json']), error=FileNotFoundError),
    Case('tokenizer/files-damaged', 'api', ['The tokenizer in', 'cannot be read', 'Copy its files again'],
         lambda d, fx: load_tokenizer(d/'model'), prep=lambda d, fx: model_copy(d, fx, tokenizer__json='{"version": '), error=ValueError),
    Case('tokenizer/no-chat-template', 'api', ['has no chat template', 'prepare_tokenizer(tok)'],
         lambda d, fx: prompt_text(T, raw_tokenizer(fx, chat_template=None), dict(prompt='hi')), error=ValueError),
    Case('tokenizer/no-eos', 'api', ['has no EOS token', 'could not learn to stop', 'tok.eos_token ='],
         lambda d, fx: prepare_tokenizer(raw_tokenizer(fx, eos_token=None)), error=ValueError),
    Case('tokenizer/no-pad-token-is-fine', 'fine', [],
         lambda d, fx: prepare_tokenizer(raw_tokenizer(fx, pad_token=None))),
    Case('tokenizer/no-chat-template-is-fine-once-prepared', 'fine', [],
         lambda d, fx: load_tokenizer(d/'model'),
         prep=lambda d, fx: (model_copy(d, fx, tokenizer_config__json=json.dumps({k: v for k, v in json.loads((fx.tiny/'tokenizer_config.json').read_text()).items()
                                                                                   if k != 'chat_template'}))/'chat_template.jinja').unlink()),

    # generation arguments
    Case('generate/max-new-tokens-0', 'api', ['max_new_tokens=0', 'at least 1'], lambda d, fx: fx.system.generate([dict(q='x')], max_new_tokens=0), error=ValueError),
    Case('generate/max-new-tokens-negative', 'api', ['max_new_tokens=-5', 'whole number of at least 1'],
         lambda d, fx: fx.system.generate([dict(q='x')], max_new_tokens=-5), error=ValueError),
    Case('generate/temperature-negative', 'api', ['temperature=-0.7', 'use 0 for greedy decoding'],
         lambda d, fx: fx.system.generate([dict(q='x')], temperature=-0.7), error=ValueError),
    Case('generate/temperature-infinite', 'api', ['temperature=inf', 'a positive number'],
         lambda d, fx: fx.system.generate([dict(q='x')], temperature=float('inf')), error=ValueError),
    Case('generate/top-p-above-1', 'api', ['top_p=1.5', 'in (0, 1]'], lambda d, fx: fx.system.generate([dict(q='x')], top_p=1.5), error=ValueError),
    Case('generate/top-p-0', 'api', ['top_p=0', 'in (0, 1]'], lambda d, fx: fx.system.generate([dict(q='x')], temperature=0.7, top_p=0), error=ValueError),
    Case('generate/batch-size-0', 'api', ['batch_size=0', 'at least 1'], lambda d, fx: fx.system.generate([dict(q='x')], batch_size=0), error=ValueError),
    Case('generate/record-field-empty', 'api', ["field 'q' is empty", 'Fill it in'], lambda d, fx: fx.system.generate([dict(q='hi'), dict(q=None)]), error=ValueError),
    Case('generate/one-string-not-a-list', 'api', ["records is the text 'What is 1 plus 1?'", 'system.ask(text)'],
         lambda d, fx: fx.system.generate('What is 1 plus 1?'), error=TypeError),
    Case('generate/ask-text-two-fields', 'api', ["fills ['age', 'q'] into its prompt", 'pass a record with those fields'],
         lambda d, fx: System('two', fx.model, fx.tok, PromptTemplate('{age}: {q}', '{a}')).ask('hi'), error=ValueError),
    Case('generate/no-records', 'api', ['No records', 'pass at least one'], lambda d, fx: fx.system.generate([]), error=ValueError),

    # evaluation inputs
    Case('eval/records-without-reference', 'api', ["no field ['a']", "the record has ['q']", 'Rename the column'],
         lambda d, fx: compare([fx.system], [dict(q='What is 1 plus 1?')], [Rouge()], max_new_tokens=2), error=KeyError),
    Case('eval/adapter-folder-missing', 'api', ['adapter does not exist', "adapter/ or merged/ folder"],
         lambda d, fx: load_system(d/'run'/'adapter'), error=FileNotFoundError),
    Case('eval/run-folder-instead-of-adapter', 'api', ['neither a PEFT adapter folder', 'It looks like a training run: load'],
         lambda d, fx: load_system(d/'run'), prep=lambda d, fx: adapter_copy(d, fx), error=FileNotFoundError),
    Case('eval/adapter-without-template-json', 'api', ["no field ['prompt']", 'no template.json', 'load_system(path, template=...)'],
         lambda d, fx: compare([load_system(d/'run'/'adapter', quant=None, dtype=torch.float32)], [NOTE], [Rouge()], max_new_tokens=2),
         prep=lambda d, fx: adapter_copy(d, fx), error=KeyError),
    Case('review/correction-empty', 'api', ['corrected answer is empty', 'or accept the output'],
         lambda d, fx: Reviews(d/'reviews.jsonl').save(dict(source=NOTE['note'], output='Cough for 5 days.'), corrected=' \n'), out='reviews.jsonl', error=ValueError),
    Case('eval/adapter-weights-missing', 'api', ['no adapter_model.safetensors', 'Save the adapter again'],
         lambda d, fx: load_system(d/'run'/'adapter'), prep=lambda d, fx: adapter_copy(d, fx, drop=['adapter_model.safetensors']), error=FileNotFoundError),
    Case('eval/template-json-damaged', 'api', ['template.json is not a saved PromptTemplate', 'PromptTemplate.to_dict()'],
         lambda d, fx: load_system(d/'run'/'adapter'), prep=lambda d, fx: adapter_copy(d, fx, template__json='{"prompt": "{note}", "answer": "{summary}"}'),
         error=ValueError),

    # the command line: real `ftbook` processes
    Case('cli/train-config-missing', 'cli', ['nope.yaml does not exist', 'pass the path of a training config'],
         lambda d, fx: ['train', str(d/'nope.yaml')], out='run'),
    Case('cli/train-config-empty', 'cli', ['empty.yaml is empty', 'RunConfig().save'],
         lambda d, fx: ['train', str(d/'empty.yaml')], {'empty.yaml': ''}, out='run'),
    Case('cli/train-set-unknown-key', 'cli', ["unknown setting 'lerning_rate'", "Known: ['epochs', 'lr'"],
         lambda d, fx: ['train', str(write_config(d, fx)), '--set', 'train.lerning_rate=1e-4'], {'records.jsonl': RECORDS}, out='run'),
    Case('cli/train-set-unknown-section', 'cli', ["no section 'trian'", "did you mean 'train'"],
         lambda d, fx: ['train', str(write_config(d, fx)), '--set', 'trian.lr=1e-4'], {'records.jsonl': RECORDS}, out='run'),
    Case('cli/train-unknown-target-module', 'cli', ["['attn'] are not layers of this model", "'all-linear'"],
         lambda d, fx: ['train', str(write_config(d, fx, lora={'target_modules': ['q_proj', 'attn']}))], {'records.jsonl': RECORDS}, out='run'),
    Case('cli/train-malformed-data', 'cli', ['records.jsonl, line 13, column', 'not valid JSON', 'fix or remove that line'],
         lambda d, fx: ['train', str(write_config(d, fx))], {'records.jsonl': RECORDS + '{"q": "What is 1 plus 1?", "a": \n'}, out='run'),
    Case('cli/train-model-config-damaged', 'cli', ['config.json is damaged', 'Copy it again'],
         lambda d, fx: ['train', str(write_config(d, fx, model={'name': str(d/'model')}))], {'records.jsonl': RECORDS},
         prep=lambda d, fx: model_copy(d, fx, config__json='{"model_type": '), out='run'),
    Case('cli/eval-adapter-missing', 'cli', ['adapter does not exist', "adapter/ or merged/ folder"],
         lambda d, fx: ['eval', '--adapter', str(d/'run'/'adapter'), '--data', str(d/'notes.jsonl'), '--out', str(d/'results')],
         {'notes.jsonl': json.dumps(NOTE) + '\n'}, out='results'),
    Case('export/not-a-run-folder', 'api', ['neither a run folder', 'output_dir of a finished run'],
         lambda d, fx: export(d/'runs'/'typo'), error=FileNotFoundError),
    Case('export/over-an-existing-export', 'api', ['exists', 'never overwrites', 'another dest'],
         lambda d, fx: export(d/'run'), prep=lambda d, fx: (adapter_copy(d, fx), (d/'run'/'gguf-f16').mkdir(), (d/'run'/'gguf-f16'/'keep.gguf').write_text('mine')),
         error=FileExistsError),
    Case('export/unknown-architecture', 'api', ["cannot write a 'gpt2' model", "to='merged'", 'convert_hf_to_gguf.py'],
         lambda d, fx: export(d/'run'), prep=lambda d, fx: gpt2_adapter(d), out='run/gguf-f16', error=ValueError),
    Case('export/dest-inside-a-file', 'api', ['is a file', 'pass a dest in a folder'],
         lambda d, fx: export(d/'run', dest=d/'notes.txt'/'export'), files={'notes.txt': 'not a folder'}, prep=lambda d, fx: adapter_copy(d, fx),
         error=NotADirectoryError),
    Case('export/unknown-quant', 'api', ["quant='q4_k_m'", "'f16' or 'q8_0'", 'llama-quantize'],
         lambda d, fx: export(d/'run', quant='q4_k_m'), prep=lambda d, fx: adapter_copy(d, fx), out='run/gguf-q4_k_m', error=ValueError),
    Case('cli/export-not-a-run-folder', 'cli', ['neither a run folder', 'output_dir of a finished run'], lambda d, fx: ['export', str(d/'runs'/'typo')]),
    Case('cli/eval-adapter-without-template-json', 'cli', ['no template.json', 'load_system(path, template=...)'],
         lambda d, fx: ['eval', '--adapter', str(d/'run'/'adapter'), '--data', str(d/'notes.jsonl'), '--no-base', '--max-new-tokens', '2'],
         {'notes.jsonl': json.dumps(NOTE) + '\n'}, prep=lambda d, fx: adapter_copy(d, fx), out='run/eval-notes'),
]

REPORT_FILES = {  # inputs of the 'report' rows
    'data/duplicates-reported': {'dup.jsonl': '{"q": "a b c", "a": "one two three four"}\n{"q": "d e f", "a": "five six seven eight"}\n{"q": "a b c", "a": "one two three four"}\n'},
    'data/conflicts-reported': {'conf.jsonl': '{"q": "Is it red?", "a": "Yes, it is red."}\n{"q": "is it red", "a": "No, it is blue."}\n'},
    'data/empty-completion-reported': {'blank.jsonl': '{"q": "Is it red?", "a": "Yes, it is red today."}\n{"q": "Is it blue?", "a": "   "}\n'},
}
for c in CASES: c.files = {**REPORT_FILES.get(c.id, {}), **c.files}

def raw_tokenizer(fx, **attrs):
    "The tiny model's tokenizer as transformers loads it, not prepared by ftbook, with `attrs` set."
    tok = copy.deepcopy(fx.raw_tok)
    for k, v in attrs.items(): setattr(tok, k, v)
    return tok

# --- running a case ----------------------------------------------------------------------------------------------------

def snapshot(d:Path)->dict:
    "Every file under `d` with a hash of its bytes, and every folder: what a failed call must leave as it was."
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else 'dir' for p in sorted(d.rglob('*'))}

def set_up(case:Case, d:Path, fx)->dict:
    d.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        (d/name).parent.mkdir(parents=True, exist_ok=True); (d/name).write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.prep: case.prep(d, fx)
    return snapshot(d)

def raised_in_ftbook(e:BaseException)->bool:
    "Whether the frame that raised `e` is ftbook code."
    return Path(traceback.extract_tb(e.__traceback__)[-1].filename).resolve().is_relative_to(PKG.resolve())

def check_unchanged(case:Case, d:Path, before:dict):
    assert snapshot(d) == before, f'the failed call changed the case folder: {set(snapshot(d).items()) ^ set(before.items())}'
    if case.out: assert not (d/case.out).exists(), f'{case.out} was written'

CLI_CASES = [c for c in CASES if c.kind == 'cli']

@pytest.fixture(scope='module')
def cli_runs(fx, tmp_path_factory):
    "Start every command-line row at once, a few processes at a time; each row reads its own result."
    env = {k: v for k, v in os.environ.items() if k != 'FTBOOK_DEBUG'}
    todo, running, done = list(CLI_CASES), {}, {}
    while todo or running:
        while todo and len(running) < 4:
            c = todo.pop(0)
            d = tmp_path_factory.mktemp(c.id.replace('/', '-'))
            set_up(c, d, fx)
            argv = c.call(d, fx)  # may write the config file it names
            before = snapshot(d)
            running[c.id] = (subprocess.Popen([str(FTBOOK), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env), d, before, argv[0])
        cid = next(iter(running))
        proc, d, before, command = running.pop(cid)
        out, err = proc.communicate(timeout=300)
        done[cid] = SimpleNamespace(returncode=proc.returncode, stdout=out, stderr=err, d=d, before=before, command=command)
    return done

@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input(case, fx, tmp_path, request):
    if case.kind == 'cli':
        r = request.getfixturevalue('cli_runs')[case.id]
        assert r.returncode != 0, f'exited 0:\n{r.stdout[-2000:]}'
        assert 'Traceback' not in r.stderr, r.stderr[-3000:]
        lines = r.stderr.strip().splitlines()
        assert lines[0].startswith(f'ftbook {r.command}: ') and len(lines) <= 4, r.stderr[-3000:]  # ftbook's message and nothing else
        for w in case.words: assert w in r.stderr, f'{w!r} not in: {r.stderr}'
        check_unchanged(case, r.d, r.before)
        return
    before = set_up(case, tmp_path, fx)
    if case.kind == 'report':
        check, expected, why = case.words
        report = case.call(tmp_path, fx)
        assert report.findings[check] == expected and why in report.reasons[check], (report.findings, report.reasons[check])
        assert report.table().loc[check, 'pairs'] == len({i for x in expected for i in (x if isinstance(x, list) else [x])})
    elif case.kind == 'fine':
        tok = case.call(tmp_path, fx)
        assert tok.pad_token and tok.pad_token != tok.eos_token and tok.pad_token_id != tok.eos_token_id and tok.padding_side == 'right'
        assert tok.chat_template and prompt_text(T, tok, dict(prompt='hi')).endswith('assistant\n')
    else:
        with pytest.raises(case.error) as e: case.call(tmp_path, fx)
        msg = e.value.args[0] if isinstance(e.value, KeyError) else str(e.value)
        assert raised_in_ftbook(e.value), f'raised outside ftbook: {traceback.format_exception(e.value)[-3:]}'
        for w in case.words: assert w in msg, f'{w!r} not in: {msg}'
    check_unchanged(case, tmp_path, before)
