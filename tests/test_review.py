"""`ftbook review` as a user runs it: an evaluation folder written by `save_results`, answers typed on the terminal's input, the reviews
file read back; killed while saving a review, the file holds every review saved before, and a second run asks only what is left."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd
from ftbook.data import PromptTemplate, read_records
from ftbook.eval import EvalResult, Unsupported, save_results, score_outputs
from ftbook.preference import preference_pairs
from ftbook.review import read_reviews, reviewed_records

FTBOOK = Path(sys.executable).parent/'ftbook'
NOTES = ['Rash on both arms for 3 days. Start cetirizine 10 mg daily.', 'Cough for a week, no fever. Honey and fluids.',
         'Knee pain after a fall. X-ray normal. Ibuprofen 400 mg three times daily for 5 days.']
ANSWERS = ['Rash for 5 days; take cetirizine 20 mg daily.', 'Cough for a week with fever; take Augmentin 875 mg.', 'Knee pain; take Ibuprofen 800 mg.']

def eval_folder(d:Path)->Path:
    "An evaluation as `ftbook eval` leaves it: a fine-tuned system and a base one, every fine-tuned answer flagged by `Unsupported`."
    frames = []
    for system in ('fine-tuned', 'base + your prompt'):
        ex = pd.DataFrame(dict(system=system, example=range(3), output=ANSWERS, reference=[''] * 3, source=NOTES))
        frames.append(pd.concat([ex, score_outputs([Unsupported()], ANSWERS, [''] * 3, NOTES)], axis=1))
    summary = pd.DataFrame(index=pd.Index(['fine-tuned', 'base + your prompt'], name='system'), data=dict(review=[1.0, 1.0]))
    settings = dict(source_field='note', systems={s: dict(template=PromptTemplate('{note}', '{summary}').to_dict()) for s in summary.index})
    return save_results(EvalResult(summary, pd.concat(frames, ignore_index=True), settings), d, 'eval-notes')

def review(d:Path, typed:str, *extra)->subprocess.CompletedProcess:
    return subprocess.run([str(FTBOOK), 'review', str(d/'eval-notes'), '--out', str(d/'reviews.jsonl'), '--reviewer', 'dr.lee', *extra],
                          input=typed, capture_output=True, text=True, timeout=300)

def test_review_in_the_terminal(tmp_path):
    eval_folder(tmp_path)
    r = review(tmp_path, 'a\ne\nCough for a week, no fever;\nhoney and fluids.\n.\ns\n', '--records', str(tmp_path/'fixes.jsonl'),
               '--preferences', str(tmp_path/'prefs.jsonl'))  # accept, correct, skip
    assert r.returncode == 0, r.stderr
    pairs = preference_pairs(tmp_path/'prefs.jsonl', PromptTemplate('{note}', '{summary}'))  # what `ftbook train` reads with train.method: dpo
    assert [(p['prompt'], p['completion'], p['rejected']) for p in pairs] == [(NOTES[1], 'Cough for a week, no fever;\nhoney and fluids.', ANSWERS[1])]
    assert 'Corrections as preference records (note, chosen, rejected): 1 in' in r.stdout
    assert read_records(tmp_path/'fixes.jsonl') == [dict(note=NOTES[1], summary='Cough for a week, no fever;\nhoney and fluids.')]  # what `ftbook train` reads
    assert 'Corrections as training records (note, summary): 1 in' in r.stdout and 'lora.init_from' in r.stdout
    assert '1 accepted, 1 corrected, 1 skipped, 1 left to review; 2 reviews in' in r.stdout and 'CLAIMS: 20; 5' in r.stdout
    saved = read_reviews(tmp_path/'reviews.jsonl')
    assert [(x['source'], x['accepted'], x['reviewer']) for x in saved] == [(NOTES[0], True, 'dr.lee'), (NOTES[1], False, 'dr.lee')]
    assert reviewed_records(tmp_path/'reviews.jsonl', 'note', 'summary') == [dict(note=NOTES[1], summary='Cough for a week, no fever;\nhoney and fluids.')]
    again = review(tmp_path, '')  # the input ends at once: nothing more is saved, and the skipped one is still to review
    assert again.returncode == 0 and 'Stopped: every review saved so far is kept' in again.stdout and '1 left to review' in again.stdout
    assert read_reviews(tmp_path/'reviews.jsonl') == saved

def test_killed_while_saving(tmp_path, kill_at):
    eval_folder(tmp_path)
    cmd = [str(FTBOOK), 'review', str(tmp_path/'eval-notes'), '--out', str(tmp_path/'reviews.jsonl'), '--reviewer', 'dr.lee']
    kill_at(cmd, 'review-saving:2', stdin='a\ne\nCough for a week, no fever.\n.\na\n')  # killed while the second review is being saved
    saved = read_reviews(tmp_path/'reviews.jsonl')
    assert [x['source'] for x in saved] == [NOTES[0]] and not list(tmp_path.glob('.reviews.jsonl.tmp-*'))  # the first review, whole
    r = review(tmp_path, 'a\na\n')
    assert r.returncode == 0 and '2 accepted' in r.stdout and NOTES[0] not in r.stdout  # asked only what was not saved
    assert [x['source'] for x in read_reviews(tmp_path/'reviews.jsonl')] == NOTES
