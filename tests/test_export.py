"`ftbook export` as a process: killed half way it leaves nothing under the final name; run again it clears the remains and writes a file that transformers reads back as the trained model."
import subprocess, sys
from pathlib import Path
from conftest import write_run_config

FTBOOK = Path(sys.executable).parent/'ftbook'

def test_killed_export_leaves_nothing_under_the_final_name(tmp_path, kill_at):
    cfg, run = write_run_config(tmp_path, max_steps=2), tmp_path/'run'
    subprocess.run([str(FTBOOK), 'train', str(cfg)], check=True, capture_output=True, timeout=600)
    kill_at([str(FTBOOK), 'export', str(run)], 'gguf-written')  # the GGUF file is complete, the folder not yet in place
    assert not (run/'gguf-f16').exists() and len(list(run.glob('.gguf-f16.tmp-*'))) == 1

    out = subprocess.run([str(FTBOOK), 'export', str(run)], check=True, capture_output=True, text=True, timeout=600).stdout
    dest = Path(out.strip().splitlines()[-1])
    assert dest == run/'gguf-f16' and not list(run.glob('.gguf-f16.tmp-*'))  # the killed export's temporary folder is gone
    assert sorted(p.name for p in dest.iterdir()) == ['Modelfile', 'README.md', 'run-f16.gguf']

    import torch
    from ftbook.ship import check_gguf
    from ftbook.ship import merge_adapter
    c = check_gguf(merge_adapter(run/'adapter', tmp_path/'merged32', dtype=torch.float32), dest/'run-f16.gguf', ['What is 7 plus 7?', 'Patient: 58-year-old male'])
    assert c['same_tokens'] and c['same_chat_template'] and c['max_logit_diff'] <= 0.002 * c['logit_span'], c
