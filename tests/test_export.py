"`ftbook export` as a process: killed half way it leaves nothing under the final name; run again it clears the remains and writes a file that transformers reads back as the trained model."
import subprocess, sys
from pathlib import Path
from conftest import write_run_config

FTBOOK = Path(sys.executable).parent/'ftbook'

def test_killed_export_leaves_nothing_under_the_final_name(tmp_path, kill_at):
    cfg, run = write_run_config(tmp_path, max_steps=2), tmp_path/'run'
    subprocess.run([str(FTBOOK), 'train', str(cfg)], check=True, capture_output=True, timeout=600)
    kill_at([str(FTBOOK), 'export', str(run)], 'gguf-written')  # the GGUF file is complete, the folder not yet in place
    assert not (run/'gguf-q8_0').exists() and len(list(run.glob('.gguf-q8_0.tmp-*'))) == 1

    out = subprocess.run([str(FTBOOK), 'export', str(run)], check=True, capture_output=True, text=True, timeout=600).stdout
    dest = Path(out.strip().splitlines()[-1])
    assert dest == run/'gguf-q8_0' and not list(run.glob('.gguf-q8_0.tmp-*'))  # the killed export's temporary folder is gone
    assert sorted(p.name for p in dest.iterdir()) == ['Modelfile', 'README.md', 'run-q8_0.gguf']

    from ftbook.export import check_gguf, export
    c = check_gguf(export(run, to='merged'), dest/'run-q8_0.gguf', ['What is 7 plus 7?', 'Patient: 58-year-old male'])
    assert c['same_tokens'] and c['same_chat_template'] and c['max_logit_diff'] <= 0.03 * c['logit_span'], c
