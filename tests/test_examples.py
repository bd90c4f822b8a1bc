"ftbook.tasks.clinic_notes as a user imports it: a large clean set through the data checks, the held-out set, corruption, facts in model-like text, and bad arguments that must fail clearly."
import json, os, subprocess, sys
import pytest
from ftbook.data import make_pairs, normalize, pair_report, read_records
from ftbook.tasks.clinic import SHORT_TEMPLATE, SUMMARY_SECTIONS, clinic_facts, format_problems, normalize_dose, parse_summary
from ftbook.tasks.conditions import CONDITIONS, Condition, parse_med
from ftbook.tasks.clinic_notes import CORRUPTIONS, STYLES, clinic_notes, clinic_split, corrupt_summary, held_out_notes
from ftbook.model import load_tokenizer, pretrained_model

@pytest.fixture(scope='module')
def big(): return clinic_notes(5000)

def test_5000_clean_records_pass_every_data_check(big):
    template, tok = SHORT_TEMPLATE, load_tokenizer(pretrained_model())
    report = pair_report(make_pairs(big, template), tok, template)
    assert {c: report.indices(c) for c in report.findings} == {c: [] for c in report.findings}

def test_5000_records_are_consistent(big):
    assert len({r['id'] for r in big}) == len({normalize(r['note']) for r in big}) == 5000
    for r in big:
        c = CONDITIONS[r['condition']]
        assert format_problems(r['summary']) == [] and r['summary'] == r['reference'] and r['corruption'] is None
        assert c.ages[0] <= r['age'] <= c.ages[1] and c.specialty == r['specialty'] and r['style'] in STYLES
        assert clinic_facts(r['note']) == clinic_facts(r['summary'])
        assert {f for f in clinic_facts(r['summary']) if not f.startswith(('age ', 'sex '))} == \
               {f"{m['drug']} {normalize_dose(str(m['dose']), m['unit'])}" for m in r['meds']}  # every structured drug, no other

def test_same_records_in_any_process():
    "No dependence on Python's per-process string hashing (set order) or on the global random state."
    code = "import json, random; random.seed(123); from ftbook.tasks.clinic_notes import clinic_notes; print(json.dumps(clinic_notes(200, corrupt=0.3)))"
    outs = [subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                           env={**os.environ, 'PYTHONHASHSEED': h}).stdout for h in ('1', '2')]
    assert outs[0] == outs[1] and json.loads(outs[0]) == clinic_notes(200, corrupt=0.3)

def test_no_torch_needed():
    code = "import sys, ftbook.tasks.clinic_notes; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == 'False'

def test_records_round_trip_through_jsonl(tmp_path):
    recs = clinic_notes(60, corrupt=0.2)
    p = tmp_path/'clinic.jsonl'
    p.write_text('\n'.join(json.dumps(r) for r in recs))
    assert list(read_records(p)) == recs
    same = lambda pairs: [{k: v for k, v in q.items() if k != 'where'} for q in pairs]  # each pair names its record: a line of the file, or an index
    assert same(make_pairs(p, SHORT_TEMPLATE)) == same(make_pairs(recs, SHORT_TEMPLATE))

def test_held_out_set_is_fixed_clean_and_disjoint():
    tr1, te1 = clinic_split(100, 40)
    tr2, te2 = clinic_split(300, 40, corrupt=0.3)
    assert te1 == te2 == held_out_notes(40) != held_out_notes(40, seed=1)
    assert tr2[:100] != tr1 and [r['note'] for r in tr2[:100]] == [r['note'] for r in tr1]  # same notes, some summaries corrupted
    assert all(r['corruption'] is None for r in te2) and sum(r['corruption'] is not None for r in tr2) == 90
    assert not {normalize(r['note']) for r in tr2} & {normalize(r['note']) for r in te2}
    t = SHORT_TEMPLATE
    leak = pair_report(make_pairs(tr2, t), load_tokenizer(pretrained_model()), t, val=make_pairs(te2, t))
    assert leak.indices('leakage') == [] and leak.leaked_val == []

@pytest.mark.parametrize('share', [0, 0.01, 0.25, 0.5, 1.0])
def test_corruption_share_is_exact(share):
    recs = clinic_notes(400, corrupt=share)
    assert sum(r['corruption'] is not None for r in recs) == round(share * 400)
    assert [r['note'] for r in recs] == [r['note'] for r in clinic_notes(400)]

@pytest.mark.parametrize('kind', CORRUPTIONS)
def test_each_kind_is_what_it_says_and_is_caught(kind):
    recs = [r for r in clinic_notes(300, corrupt=0.5, kinds=(kind,)) if r['corruption']]
    assert len(recs) == 150 and {r['corruption'] for r in recs} == {kind}
    for r in recs:
        got, ref = r['summary'].split('\n'), r['reference'].split('\n')
        if kind == 'missing_section': assert len(got) == 6 and set(got) < set(ref)
        if kind == 'wrong_order': assert sorted(got) == sorted(ref) and got != ref and format_problems(r['summary'])
        if kind in ('wrong_drug', 'wrong_dose'):
            assert format_problems(r['summary']) == [] and clinic_facts(r['summary']) != clinic_facts(r['note'])
            assert [i for i,(a,b) in enumerate(zip(got, ref)) if a != b] == [SUMMARY_SECTIONS.index('Medications:')]
            assert r['corruption_detail'].split(' ')[0] in r['reference']

def test_corruption_needs_a_drug():
    no_drug = next(r for r in clinic_notes(200) if not r['meds'])
    with pytest.raises(ValueError, match='no medication to corrupt'): corrupt_summary(no_drug, 'wrong_dose', __import__('random').Random(0))
    with pytest.raises(ValueError, match='choose from'): corrupt_summary(no_drug, 'typo', __import__('random').Random(0))

@pytest.mark.parametrize('text,facts', [
    ('The patient is a 58 year old man on Aspirin 81MG daily and Lisinopril: 10 mg', {'age 58', 'sex male', 'aspirin 81 mg', 'lisinopril 10 mg'}),
    ('Patient: 58-year-old male\nMedications: 81 mg of aspirin; 1000 mg amoxicillin', {'age 58', 'sex male', 'aspirin 81 mg', 'amoxicillin 1 g'}),
    ('paracetamol 500mg, GTN 400 mcg SL, acetylsalicylic acid 75 mg', {'acetaminophen 500 mg', 'nitroglycerin 400 mcg', 'aspirin 75 mg'}),
    ('insulin glargine 10 units SC qhs; vit D3 50,000 IU weekly', {'insulin glargine 10 units', 'cholecalciferol 50000 units'}),
    ('levothyroxine 0.05 mg; levothyroxine 50 mcg', {'levothyroxine 50 mcg'}),
    ('HbA1c 8.2%, creatinine 0.9 mg/dL, 40 pack-years, metformin stopped, RTC in 2 wks, weight 70 kg', set()),
    ('Allergic to penicillin (hives). amoxicillin-clavulanate 875 mg PO bid', {'amoxicillin-clavulanate 875 mg'}),
    ('7 y.o. girl', {'age 7', 'sex female'}),
    ('45yo F', {'age 45', 'sex female'}),
])
def test_facts_in_model_like_text(text, facts):
    assert clinic_facts(text) == facts

def test_normalize_dose():
    assert [normalize_dose(n, u) for n,u in [('81', 'mg'), ('1,000', 'mg'), ('0.4', 'MG'), ('.5', 'g'), ('2', 'grams'), ('10', 'IU'), ('0.10', '%')]] == \
           ['81 mg', '1 g', '400 mcg', '500 mg', '2 g', '10 units', '0.1%']

def test_parse_summary_tolerates_what_models_write():
    text = ("Here is the summary you asked for.\n\n**Patient:** 58-year-old male\n- Chief Complaint: chest pain\nKey findings: BP 150/90;\n"
            "clear lungs\nAssessment: angina\nPlan: stress test\nMedications:\n* aspirin 81 mg PO daily\nFollow up: Return in 2 weeks\nFollowup: again")
    s = parse_summary(text)
    assert list(s) == [x[:-1] for x in SUMMARY_SECTIONS] and s['Key findings'] == 'BP 150/90; clear lungs' and s['Follow-up'] == 'Return in 2 weeks'
    assert s['Medications'] == '* aspirin 81 mg PO daily' and s['Patient'] == '58-year-old male'
    assert format_problems(text) == ["'Follow-up' repeated", '3 extra line(s): text outside the sections, or a section over several lines']
    assert format_problems('') == [f'missing {x[:-1]!r}' for x in SUMMARY_SECTIONS]

@pytest.mark.parametrize('kwargs,err,words', [
    (dict(n=0), ValueError, ['n=0', 'whole number', 'for example n=200']),
    (dict(n=-5), ValueError, ['n=-5']),
    (dict(n=2.5), ValueError, ['n=2.5', 'whole number']),
    (dict(n=True), ValueError, ['n=True']),
    (dict(n=10**6), ValueError, ['999,999']),
    (dict(corrupt=1.5), ValueError, ['corrupt=1.5', 'from 0 to 1', 'corrupt=0.2']),
    (dict(corrupt=-0.1), ValueError, ['corrupt=-0.1']),
    (dict(corrupt='0.2'), ValueError, ["corrupt='0.2'", 'a number']),
    (dict(kinds=('wrong_dosage',)), ValueError, ["unknown ['wrong_dosage']", "'wrong_dose'"]),
    (dict(kinds='wrong_dose'), TypeError, ["kinds=('wrong_dose',)"]),
    (dict(kinds=()), ValueError, ['kinds=()', 'empty']),
    (dict(styles=('SOAP',)), ValueError, ["unknown ['SOAP']", "'soap'"]),
    (dict(specialties=('cardio',)), ValueError, ["unknown ['cardio']", "'cardiology'"]),
    (dict(n=100, corrupt=1.0, kinds=('wrong_dose',)), ValueError, ['corrupt=1.0', 'lower corrupt', "'missing_section'"]),
])
def test_bad_arguments_name_the_fix(kwargs, err, words):
    with pytest.raises(err) as e: clinic_notes(**kwargs)
    assert all(w in str(e.value) for w in words), str(e.value)

def test_bad_split_and_held_out_arguments():
    with pytest.raises(ValueError, match='n=0'): clinic_split(n_train=0)
    with pytest.raises(ValueError, match='n=0'): clinic_split(n_test=0)
    with pytest.raises(ValueError, match='corrupt=2'): clinic_split(corrupt=2)
    with pytest.raises(ValueError, match="unknown \\['poem'\\]"): held_out_notes(10, styles=('poem',))

def test_bad_table_entries_fail_when_defined():
    with pytest.raises(ValueError, match='"drug dose unit \\[form\\] route frequency'): parse_med('aspirin 81 mg by mouth daily')
    with pytest.raises(ValueError, match='frequency from'): parse_med('aspirin 81 mg PO every-day')
    with pytest.raises(ValueError, match=r"uses \['site'\] .* define them in slots= or numbers="):
        Condition('x', 'cardiology', (40, 80), ['pain in the {site}'], (1, 2, 'day'), ['a', 'b'], ['X'], ['p'], [[]], ['prn'])
