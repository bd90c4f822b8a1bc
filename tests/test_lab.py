"""`make lab` starts JupyterLab on the notebooks as root (as in most containers) and as an ordinary user, `make install` registers the
book's kernel, and a chapter opened and saved in JupyterLab stays byte for byte as committed."""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from contextlib import contextmanager
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
UNSHARE = ['unshare', '--user', '--map-user=1000', '--map-group=1000']  # an ordinary user who can still read root's files

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@contextmanager
def make_lab(not_root:bool=False,      # run as an ordinary user (uid 1000 in a user namespace)
             nbs:Path|None=None,       # the notebooks folder to open (`make lab NBS=...`); None: the checkout's nbs/
             home:Path|None=None,      # the user's home (Jupyter's config and runtime files); None: a fresh empty one
             deadline:float=180,       # seconds for the server to answer: a guard against a hang, not a speed check
            ):                         # yields the port of the running server
    "Run `make lab` until its server answers, yield its port, stop it after."
    port, own_home = free_port(), home is None
    home = Path(tempfile.mkdtemp()) if own_home else home
    os.chmod(home, 0o777)  # a user's own home: Jupyter writes its runtime files there
    cmd = ['make', '-s', 'lab', f"LAB_ARGS=--no-browser --port={port} --ServerApp.token=ftbook-test --ServerApp.ip=127.0.0.1",
           *([f'NBS={nbs}'] if nbs else [])]
    if not_root: cmd = [*UNSHARE, *cmd]  # uid 1000 inside a user namespace: make and Jupyter see an ordinary user
    env = {**os.environ, 'HOME': str(home), 'JUPYTER_RUNTIME_DIR': f'{home}/runtime', 'JUPYTER_CONFIG_DIR': f'{home}/config'}
    log = home/'lab.log'
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, 'w'), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.monotonic()
        while True:  # the server answers or the process ends
            assert proc.poll() is None, f'make lab exited ({proc.returncode}):\n' + log.read_text()[-3000:]
            assert time.monotonic() - t0 < deadline, 'make lab did not answer:\n' + log.read_text()[-3000:]
            try: lab_get(port, 'api/contents'); break
            except OSError: time.sleep(0.5)
        yield port
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(timeout=60)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        if own_home: shutil.rmtree(home, ignore_errors=True)

def lab_get(port:int, path:str)->dict:
    "GET `path` of the Jupyter server's REST API on `port`."
    req = urllib.request.Request(f'http://127.0.0.1:{port}/{path}', headers={'Authorization': 'token ftbook-test'})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())

def lab_contents(not_root:bool=False)->dict:
    "The listing of the notebook folder of `make lab` (run as an ordinary user if `not_root`)."
    with make_lab(not_root) as port: return lab_get(port, 'api/contents')

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

def reader_checkout(d:Path)->Path:
    "A git repository in `d` holding what a reader's clone holds for JupyterLab: settings.ini, .gitignore and the notebooks, committed."
    shutil.copytree(ROOT/'nbs', d/'nbs', symlinks=True, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '.last_checked'))
    for f in ('settings.ini', '.gitignore'): shutil.copy(ROOT/f, d/f)
    git = lambda *a: subprocess.run(['git', '-c', 'user.name=reader', '-c', 'user.email=reader@example.org', *a], cwd=d, check=True)
    git('init', '-q'); git('add', '-A'); git('commit', '-qm', 'as cloned')
    return d

def git_changes(d:Path)->str: return subprocess.run(['git', 'status', '--porcelain'], cwd=d, capture_output=True, text=True, check=True).stdout

def wait_for(cond, what:str, deadline:float=120):
    "Wait until `cond()` returns something true, and return it; fail naming `what` after `deadline` seconds (a guard against a hang, not a speed check)."
    t0 = time.monotonic()
    while not (got := cond()):
        assert time.monotonic() - t0 < deadline, f'gave up waiting for {what}'
        time.sleep(0.5)
    return got

def written_since(nb:Path, mtime_ns:int)->bytes|None:
    """The bytes of `nb` once written after `mtime_ns`, whole; None before. Jupyter's server writes a notebook in place (its backup
    copy is beside it), so the new mtime shows at the write's start: a file read then can be cut short. A whole notebook parses."""
    if nb.stat().st_mtime_ns == mtime_ns: return None
    data = nb.read_bytes()
    try: json.loads(data); return data
    except ValueError: return None

DASHBOARD = '14_dashboard.ipynb'  # a chapter with saved widget state (whole numbers that JavaScript rewrites) and a kernel to start

def test_opening_and_saving_a_chapter_in_lab_changes_nothing(tmp_path):
    """Open the dashboard chapter in JupyterLab as `make lab` runs it, in Chromium: starting its kernel marks the notebook modified
    (kernel name, Python version), autosave writes it, then Ctrl+S writes it again. nbdev's save hook and the committed file's
    numbers must make both writes byte for byte the committed file, so `git status` stays empty.
    The copy of the notebooks keeps a failure out of the checkout; autosave runs every 2 s (a reader's own setting) instead of 120."""
    from playwright.sync_api import sync_playwright
    repo, home = reader_checkout(tmp_path/'clone'), tmp_path/'home'
    settings = home/'config/lab/user-settings/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings'
    settings.parent.mkdir(parents=True); settings.write_text(json.dumps({'autosaveInterval': 2}))
    nb, committed = repo/'nbs'/DASHBOARD, (repo/'nbs'/DASHBOARD).read_bytes()
    with make_lab(nbs=repo/'nbs', home=home) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path='/usr/bin/chromium')
        page = browser.new_page(viewport={'width': 1400, 'height': 900})
        copied = nb.stat().st_mtime_ns
        page.goto(f'http://127.0.0.1:{port}/lab/tree/{DASHBOARD}?token=ftbook-test')
        page.wait_for_selector('.jp-Notebook h1:has-text("The dashboard")', timeout=120_000)
        page.wait_for_selector('.jp-StatusBar-Widget:has-text("| Idle")', timeout=120_000)  # the kernel started and answered
        opened = wait_for(lambda: written_since(nb, copied), f'an autosave of the opened notebook (server log: {home}/lab.log)')
        assert opened == committed and not git_changes(repo), 'opening the chapter changed it:\n' + git_changes(repo)
        autosaved = nb.stat().st_mtime_ns
        page.click('.jp-Notebook .jp-Cell >> nth=0')
        page.keyboard.press('Control+s')
        saved = wait_for(lambda: written_since(nb, autosaved), 'the save asked for with Ctrl+S', deadline=30)
        page.screenshot(path=str(tmp_path/'lab.png'))  # to look at when this fails: the chapter open, its kernel idle
        browser.close()
    assert saved == committed, 'saving the chapter changed it: ' + subprocess.run(['git', 'diff', '--stat'], cwd=repo, capture_output=True, text=True).stdout
    assert not git_changes(repo), git_changes(repo)  # nor anything beside it (nbdev's .last_checked, Jupyter's checkpoints)

def test_notebooks_hold_numbers_as_jupyterlab_writes_them():
    "JupyterLab writes a whole float as `10`: a notebook saved with `10.0` (by nbconvert) would change when opened and saved there."
    sys.path.insert(0, str(ROOT/'tools'))
    from lab_numbers import lab_ready
    assert not [p.name for p in sorted((ROOT/'nbs').glob('*.ipynb')) if not lab_ready(p)], 'run tools/lab_numbers.py nbs/*.ipynb'
