"Fixtures and helpers shared by the files in tests/ (imported as `from conftest import ...`)."
import json, os, signal, subprocess, time
from pathlib import Path
import pytest

ARITHMETIC = [dict(q=f'What is {i} plus {i}?', a=f'{i} plus {i} is {2*i}.') for i in range(48)]

def write_run_config(d:Path, r:int=8, **train)->Path:
    "`d/config.yaml` for a tiny-model QLoRA run over the 48 ARITHMETIC records in `d/records.jsonl`, validated and checkpointed every 2 steps, into `d/run`."
    from ftbook.config import DataSettings, LoraSettings, ModelSettings, RunConfig, TrainSettings
    from ftbook.data import PromptTemplate
    from ftbook.testing import tiny_model
    (d/'records.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in ARITHMETIC))
    settings = dict(epochs=2, batch_size=4, eval_every=2, log_every=1, patience=None, gradient_checkpointing=False)
    cfg = RunConfig(output_dir=str(d/'run'), model=ModelSettings(name=str(tiny_model('llama'))), lora=LoraSettings(r=r),
                    data=DataSettings(path=str(d/'records.jsonl'), template=PromptTemplate('{q}', '{a}'), max_len=64),
                    train=TrainSettings(**{**settings, **train}))
    return cfg.save(d/'config.yaml')

def _kill_at(cmd:list, point:str, tmp:Path, log:Path|None=None, env:dict|None=None, timeout:float=600, stdin:str|None=None):
    """Run `cmd` (in its own process group) until it stops at the named `point` (`ftbook.core.pause_point`), then SIGKILL the group.
    Fails if the process ends before reaching the point. No race with the clock: the process waits at the point until it is killed.
    `stdin`: what a user types, written to the process's input at once."""
    flag = tmp/'paused'; flag.unlink(missing_ok=True)
    out = open(log, 'w') if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE if stdin else None, text=True,
                            env=dict(env or os.environ, FTBOOK_PAUSE_AT=point, FTBOOK_PAUSE_FILE=str(flag)))
    if stdin: proc.stdin.write(stdin); proc.stdin.close()
    t0 = time.monotonic()
    while not flag.exists():
        assert proc.poll() is None, f'the process ended (rc {proc.returncode}) before reaching {point}' + (':\n' + log.read_text()[-3000:] if log else '')
        assert time.monotonic() - t0 < timeout, f'no sign of {point} after {timeout} s: the process hangs'
        time.sleep(0.05)
    assert flag.read_text() == point
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()

@pytest.fixture
def kill_at(tmp_path):
    "`kill_at(cmd, point, log=None, env=None)`: run a command until it reaches a named point, and SIGKILL it there."
    return lambda cmd, point, **kw: _kill_at(cmd, point, tmp_path, **kw)

def in_terminal(cmd:list, timeout:float=600)->tuple:
    "Run `cmd` with a pseudo-terminal as its stdout and stderr, as a user's terminal would be (progress bars drawn): (return code, all it printed)."
    import fcntl, pty, select, struct, termios
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 160, 0, 0))  # 40 rows, 160 columns: a new pty has none, and bars fit their width
    proc = subprocess.Popen(cmd, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(follower)
    out, t0 = b'', time.monotonic()
    while time.monotonic() - t0 < timeout:
        if select.select([leader], [], [], 0.5)[0]:
            try: chunk = os.read(leader, 65536)
            except OSError: chunk = b''  # the terminal closed: the process ended
            if not chunk and proc.poll() is not None: break
            out += chunk
        elif proc.poll() is not None: break
    else: proc.kill(); raise AssertionError(f'{cmd} still running after {timeout} s')
    os.close(leader)
    return proc.wait(), out.decode(errors='replace')
