"Fixtures shared by the files in tests/."
import os, signal, subprocess, time
from pathlib import Path
import pytest

def _kill_at(cmd:list, point:str, tmp:Path, log:Path|None=None, env:dict|None=None, timeout:float=600):
    """Run `cmd` (in its own process group) until it stops at the named `point` (`ftbook.core.pause_point`), then SIGKILL the group.
    Fails if the process ends before reaching the point. No race with the clock: the process waits at the point until it is killed."""
    flag = tmp/'paused'; flag.unlink(missing_ok=True)
    out = open(log, 'w') if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
                            env=dict(env or os.environ, FTBOOK_PAUSE_AT=point, FTBOOK_PAUSE_FILE=str(flag)))
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
