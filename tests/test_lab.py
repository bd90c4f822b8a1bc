"`make lab` starts JupyterLab on the notebooks as root (as in most containers) and as an ordinary user, and `make install` registers the book's kernel."
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
UNSHARE = ['unshare', '--user', '--map-user=1000', '--map-group=1000']  # an ordinary user who can still read root's files

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def lab_contents(not_root:bool=False, deadline:float=180)->dict:
    "Start `make lab` (as an ordinary user if `not_root`), wait until its server answers, return the listing of its notebook folder, stop it."
    port, home = free_port(), tempfile.mkdtemp()
    os.chmod(home, 0o777)  # a user's own home: Jupyter writes its runtime files there
    cmd = ['make', '-s', 'lab', f"LAB_ARGS=--no-browser --port={port} --ServerApp.token=ftbook-test --ServerApp.ip=127.0.0.1"]
    if not_root: cmd = [*UNSHARE, *cmd]  # uid 1000 inside a user namespace: make and Jupyter see an ordinary user
    env = {**os.environ, 'HOME': home, 'JUPYTER_RUNTIME_DIR': f'{home}/runtime', 'JUPYTER_CONFIG_DIR': f'{home}/config'}
    log = open(f'{home}/lab.log', 'w')
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.monotonic()
        while True:  # a deadline against a hang, not a speed check: the server answers or the process ends
            assert proc.poll() is None, f'make lab exited ({proc.returncode}):\n' + Path(f'{home}/lab.log').read_text()[-3000:]
            assert time.monotonic() - t0 < deadline, 'make lab did not answer:\n' + Path(f'{home}/lab.log').read_text()[-3000:]
            try:
                req = urllib.request.Request(f'http://127.0.0.1:{port}/api/contents', headers={'Authorization': 'token ftbook-test'})
                return json.loads(urllib.request.urlopen(req, timeout=5).read())
            except OSError: time.sleep(0.5)
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGTERM); proc.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)

def notebook_names(listing:dict)->set: return {c['name'] for c in listing['content'] if c['type'] == 'notebook'}

@pytest.mark.skipif(os.geteuid() != 0, reason='runs as root only where the tests run as root')
def test_make_lab_starts_as_root():
    assert {'index.ipynb', '21_medical_summaries.ipynb'} <= notebook_names(lab_contents())

def user_namespaces()->bool:
    return shutil.which('unshare') is not None and subprocess.run([*UNSHARE, 'true'], capture_output=True).returncode == 0

@pytest.mark.skipif(not user_namespaces(), reason='no user namespaces here to run as an ordinary user')
def test_make_lab_starts_as_an_ordinary_user():
    "In a user namespace the process has uid 1000 (its files stay readable, unlike switching to `nobody`, which cannot enter /root where this machine's Python lives)."
    assert subprocess.run([*UNSHARE, 'id', '-u'], capture_output=True, text=True).stdout.strip() == '1000'
    assert {'index.ipynb', '21_medical_summaries.ipynb'} <= notebook_names(lab_contents(not_root=True))

def test_the_ftbook_kernel_is_registered():
    "Front ends other than `make lab` (VS Code, a system JupyterLab) find a kernel that runs this environment's Python."
    specs = json.loads(subprocess.run([str(Path(sys.executable).parent/'jupyter'), 'kernelspec', 'list', '--json'],
                                      capture_output=True, text=True, check=True).stdout)['kernelspecs']
    assert 'ftbook' in specs, 'run make install: it registers the kernel'  # make test runs it, so it is this checkout's
    argv = specs['ftbook']['spec']['argv']
    assert Path(argv[0]).parent == Path(sys.executable).parent, argv  # this environment's own bin/, not resolved: a venv's python is a link to the base one
