"ftbook.data under bad input: every case ends in an error that names the file, line or row, the field, and the fix."
import json, warnings
import pandas as pd, pytest
from ftbook.data import PromptTemplate, make_pairs, read_records, split_pairs, tokenize_pairs
from ftbook.model import load_tokenizer
from ftbook.testing import tiny_model

T = PromptTemplate('Specs: {specs}', '{description}')
GOOD = dict(specs='steel; 350 ml', description='A 350 ml steel mug.')

def write(tmp_path, name, content):
    p = tmp_path/name
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return p

@pytest.mark.parametrize('name,content,err,words', [
    ('bad.jsonl', json.dumps(GOOD) + '\n{"specs": "x",\n', ValueError, ['bad.jsonl, line 2', 'not valid JSON', 'fix or remove']),
    ('list.jsonl', json.dumps(GOOD) + '\n[1, 2]\n', ValueError, ['line 2', 'must be an object']),
    ('empty.jsonl', '\n\n', ValueError, ['empty.jsonl is empty']),
    ('empty.csv', '', ValueError, ['empty.csv is empty']),
    ('latin1.csv', 'specs,description\ncaf\xe9,ok\n'.encode('latin-1'), ValueError, ['line 2', 'not valid utf-8', "encoding='latin-1'"]),
    ('data.txt', 'hello', ValueError, ['reads .jsonl, .csv and .parquet']),
])
def test_bad_files(tmp_path, name, content, err, words):
    with pytest.raises(err) as e: make_pairs(write(tmp_path, name, content), T)
    assert all(w in str(e.value) for w in words), str(e.value)

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): make_pairs(tmp_path/'nope.jsonl', T)

def test_missing_column_lists_the_columns(tmp_path):
    p = write(tmp_path, 'd.csv', 'spec,description\nsteel,A mug.\n')
    with pytest.raises(KeyError) as e: make_pairs(p, T)
    assert 'line 2' in str(e.value) and "['specs']" in str(e.value) and "['description', 'spec']" in str(e.value)

def test_nan_cell_names_line_and_field(tmp_path):
    p = write(tmp_path, 'd.csv', 'specs,description\nsteel,A mug.\nwool,\n')
    with pytest.raises(ValueError) as e: make_pairs(p, T)
    assert 'line 3' in str(e.value) and "'description' is empty" in str(e.value)

def test_nan_in_dataframe_names_the_row():
    with pytest.raises(ValueError, match="row 1 of the DataFrame: field 'specs' is empty"):
        make_pairs(pd.DataFrame([GOOD, dict(GOOD, specs=None)]), T)

@pytest.mark.parametrize('value', [['a', 'b'], {'a': 1}, b'bytes'])
def test_non_text_values(value):
    with pytest.raises(TypeError, match="field 'specs' is a .*, not text"): make_pairs([dict(GOOD, specs=value)], T)

def test_numbers_are_text():
    assert make_pairs([dict(GOOD, specs=350)], T)[0]['prompt'] == 'Specs: 350'

def test_records_must_be_dicts():
    with pytest.raises(TypeError, match='record 1 is a str'): read_records([GOOD, 'oops'])

def test_bad_messages_layout():
    with pytest.raises(ValueError, match='no assistant message'):
        make_pairs([{'messages': [{'role': 'user', 'content': 'hi'}]}])

def test_bad_arguments():
    tok = load_tokenizer(tiny_model())
    pairs = make_pairs([GOOD], T)
    with pytest.raises(ValueError, match="use 'drop' or 'raise'"): tokenize_pairs(pairs, tok, T, overlong='truncate')
    with pytest.raises(ValueError, match='each share'): split_pairs(pairs, val=0.7, test=0.5)

def test_csv_line_numbers_survive_multiline_fields(tmp_path):
    p = write(tmp_path, 'm.csv', 'specs,description\n"steel;\nthree\nlines",A mug.\nwool,\n')
    with pytest.raises(ValueError, match='line 5 of .*m.csv'): make_pairs(p, T)

def test_jsonl_with_line_separator_inside_a_string_and_a_bom(tmp_path):
    rec = dict(GOOD, description='one\u2028two')
    p = write(tmp_path, 'u.jsonl', b'\xef\xbb\xbf' + json.dumps(rec, ensure_ascii=False).encode())
    assert make_pairs(p, T)[0]['completion'] == 'one\u2028two'

@pytest.mark.parametrize('source', [[], pd.DataFrame(columns=['specs', 'description'])])
def test_no_records(source):
    with pytest.raises(ValueError, match='holds no records'): make_pairs(source, T)

def test_header_only_csv(tmp_path):
    with pytest.raises(ValueError, match='holds no records'): make_pairs(write(tmp_path, 'h.csv', 'specs,description\n'), T)

def test_symbols_make_prompts_different():
    from ftbook.data import normalize
    assert normalize('Is 5 > 3?') != normalize('Is 5 < 3?') and normalize('C++') != normalize('C')
    assert normalize('The  Camp-Mug, 350 ml!') == normalize('the camp mug 350 ml')

def test_collate_refuses_mixed_rows():
    from ftbook.data import collate
    with pytest.raises(ValueError, match='mixed'): collate([dict(input_ids=[1], labels=[1], position_ids=[0]), dict(input_ids=[1], labels=[1])], 0)
    with pytest.raises(ValueError, match='no rows'): collate([], 0)

def test_split_that_cannot_give_a_validation_set():
    with pytest.raises(ValueError, match='val came out empty'):
        split_pairs([dict(prompt='same', completion=str(i)) for i in range(20)], val=0.1)

# --- ShareGPT, Alpaca and Parquet: converted when read, and said so; records keep their line or row --------------------

def jsonl(tmp_path, name, records): return write(tmp_path, name, ''.join(json.dumps(r) + '\n' for r in records))

def test_parquet_rows_and_nested_sharegpt(tmp_path):
    talk = [{'from': 'system', 'value': 'Be brief.'}, {'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello.'}]
    pd.DataFrame([{'conversations': talk, 'id': 3}]).to_parquet(tmp_path/'s.parquet')
    with pytest.warns(UserWarning, match=r"s\.parquet: 1 ShareGPT record read as conversations \('messages'; human -> user, gpt -> assistant\)"):
        recs = read_records(tmp_path/'s.parquet')
    assert recs.where(0) == f"row 0 of {tmp_path/'s.parquet'}"
    assert list(recs) == [{'id': 3, 'messages': [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello.'}]}]
    with pytest.warns(UserWarning, match='the DataFrame: 1 ShareGPT'):
        assert list(read_records(pd.read_parquet(tmp_path/'s.parquet'))) == list(recs)  # pandas gives the turns as an array
    pair = make_pairs(recs)[0]
    assert (pair['prompt'], pair['completion'], pair['system'], pair['where']) == ('Hi', 'Hello.', 'Be brief.', f"row 0 of {tmp_path/'s.parquet'}")

def test_sharegpt_weights_are_kept():
    with pytest.warns(UserWarning, match='records: 1 ShareGPT record read'):
        recs = read_records([{'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hey.', 'weight': 0},
                                                {'from': 'human', 'value': 'Hi?'}, {'from': 'gpt', 'value': 'Hello.'}]}], format='sharegpt')
    assert [m.get('weight') for m in recs[0]['messages']] == [None, 0, None, None]

def test_alpaca_prompt_is_the_instruction_then_the_input(tmp_path):
    p = jsonl(tmp_path, 'a.jsonl', [dict(instruction='Translate into French.', input='Good morning.', output='Bonjour.'),
                                    dict(instruction='Name a colour.', input='', output='Blue.'),
                                    dict(instruction='Name a colour.', output='Red.', id=7)])
    with pytest.warns(UserWarning, match=r'a\.jsonl: 3 Alpaca records read as prompt/completion records \(the prompt: the instruction, then a blank line'):
        pairs = make_pairs(p)
    assert [(q['prompt'], q['completion']) for q in pairs] == [('Translate into French.\n\nGood morning.', 'Bonjour.'), ('Name a colour.', 'Blue.'), ('Name a colour.', 'Red.')]
    assert [q['where'] for q in pairs] == [f'line {n} of {p}' for n in (1, 2, 3)]
    with pytest.warns(UserWarning): assert read_records(p)[2] == dict(id=7, prompt='Name a colour.', completion='Red.')  # other fields stay

def test_format_none_reads_records_as_they_are_for_a_template(tmp_path, recwarn):
    p = jsonl(tmp_path, 'a.jsonl', [dict(instruction='Name a colour.', input='warm', output='Red.')])
    t = PromptTemplate('{instruction} ({input})', '{output}')
    assert make_pairs(read_records(p, format=None), t)[0]['prompt'] == 'Name a colour. (warm)'
    assert read_records([GOOD])[0] == GOOD and not recwarn.list  # no layout, no conversion, nothing said

def test_records_are_converted_once(tmp_path):
    p = jsonl(tmp_path, 'a.jsonl', [dict(instruction='Name a colour.', input='', output='Red.')])
    with pytest.warns(UserWarning): recs = read_records(p)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # read again, nothing is converted twice, nothing is said
        assert read_records(recs) is recs and list(read_records(list(recs))) == list(recs)

def test_mixed_file_names_every_record_that_does_not_fit(tmp_path):
    sharegpt = {'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello.'}]}
    p = jsonl(tmp_path, 'm.jsonl', [sharegpt, dict(instruction='x', output='y'), sharegpt, dict(q='x')])
    with pytest.raises(ValueError) as e: read_records(p)
    msg = str(e.value)
    assert msg.startswith(f'2 of 4 records of {p} cannot be read as ShareGPT records (line 1 is one')
    assert f'line 2 of {p}: not a ShareGPT record' in msg and f"line 4 of {p}: not a ShareGPT record: it has ['q']" in msg and 'line 3' not in msg

# --- plain pairs name their record's line, as conversations do -----------------------------------------------------

def test_plain_pairs_name_their_line_in_warnings(tmp_path):
    from ftbook.trainer import training_rows
    p = jsonl(tmp_path, 'd.jsonl', [GOOD, dict(GOOD, description='word ' * 300)])
    pairs = make_pairs(p, T)
    assert [q['where'] for q in pairs] == [f'line 1 of {p}', f'line 2 of {p}']
    with pytest.warns(UserWarning, match=r'1 of 2 examples are longer than max_len=128 .*: line 2 of .*d\.jsonl\. Raise'):
        training_rows(pairs, load_tokenizer(tiny_model()), T, 128)

def test_a_record_system_message_and_the_template_system_prompt_are_both_sent():
    "A conversation's own system message comes first, the template's system prompt after it; the same prompt twice is sent once."
    from ftbook.data import chat_messages
    conv = make_pairs([{'messages': [{'role': 'system', 'content': 'You answer for Lakeside Clinic.'}, {'role': 'user', 'content': 'Open today?'},
                                     {'role': 'assistant', 'content': 'Until six.'}]}])[0]
    system = lambda template, pair: chat_messages(template, pair)[0]['content']
    assert system(PromptTemplate(system='Answer in one sentence.'), conv) == 'You answer for Lakeside Clinic.\n\nAnswer in one sentence.'
    assert system(PromptTemplate(), conv) == 'You answer for Lakeside Clinic.'
    assert system(PromptTemplate(system='You answer for Lakeside Clinic.'), conv) == 'You answer for Lakeside Clinic.'
    plain = make_pairs([{'q': 'Open today?', 'a': 'Until six.'}], PromptTemplate('{q}', '{a}', system='Be brief.'))[0]
    assert chat_messages(PromptTemplate('{q}', '{a}', system='Be brief.'), plain)[0] == {'role': 'system', 'content': 'Be brief.'}
