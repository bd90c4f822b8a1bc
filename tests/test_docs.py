"The docs site is real: `make docs` builds a page for every notebook, with its images, and every page passes a real browser's checks."
import re, shutil, subprocess, sys, tempfile
from pathlib import Path
import nbformat, pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT/'_docs'

from nbdev.doclinks import _nbpath2html

def directives(src:str)->set:
    "The `#| ` directives at the top of a cell (`hide`, `output: false`, `slow`...), however many lines they take."
    top = re.match(r'(?:\s*#\|.*\n?)*', src).group(0)
    return {m.group(1).strip() for l in top.splitlines() if (m := re.match(r'\s*#\|(.+)', l))}

def shows_no_output(src:str)->bool: return bool(directives(src) & {'hide', 'output: false'})  # nbdev keeps its outputs off the page

def page_name(nb:Path)->str: return _nbpath2html(nb).name  # nbdev's page name: `02_quant.ipynb` -> `quant.html`
def notebooks(): return sorted((ROOT/'nbs').glob('*.ipynb'))

@pytest.fixture(scope='module')
def site():
    "Build the site once for this module, exactly as `make docs` does."
    readme = (ROOT/'README.md').read_text()
    subprocess.run([sys.executable, 'tools/docs.py'], cwd=ROOT, check=True)
    return readme

def test_every_notebook_is_a_page(site):
    assert (DOCS/'index.html').exists()
    for nb in notebooks():
        page = DOCS/page_name(nb)
        assert page.exists(), f'{nb.name} has no page {page.name} in _docs/'
        title = nbformat.read(nb, as_version=4).cells[0].source.splitlines()[0].lstrip('# ').strip()
        assert title in page.read_text(), f'{page.name} does not show the title of {nb.name}'

def test_pages_show_the_notebook_images(site):
    for nb in notebooks():
        n_images = sum('image/png' in o.get('data', {}) for c in nbformat.read(nb, as_version=4).cells
                       if c.cell_type=='code' and not shows_no_output(c.source)
                       for o in c.get('outputs', []))
        html = (DOCS/page_name(nb)).read_text()
        srcs = re.findall(r'<img[^>]+src="([^"]+)"', html)
        assert len(srcs) >= n_images, f'{nb.name} has {n_images} plots but its page shows {len(srcs)} images'
        for s in srcs:
            assert s.startswith(('data:', 'http')) or (DOCS/s).exists(), f'{page_name(nb)}: image {s} is missing'

def test_no_broken_links(site):
    "smalldocs finds no broken link or ignored syntax in the processed pages (nbdev's auto-links included)."
    if shutil.which('quarto'): pytest.skip('the site was built by Quarto')
    res = subprocess.run([str(Path(sys.executable).parent/'smalldocs'), 'check', str(ROOT/'_proc')],
                         capture_output=True, text=True)
    assert res.returncode==0, res.stdout + res.stderr

def test_readme_is_made_from_index(site):
    if shutil.which('quarto'): pytest.skip('nbdev_readme (Quarto) formats the README its own way')
    assert (ROOT/'README.md').read_text() == site, 'README.md was out of date with nbs/index.ipynb: commit the rebuilt README.md'
    assert 'make demo' in site and 'make test' in site

def screenshot(url:str, out:Path, size=(1280, 900)):
    "A PNG of `url` in headless Chromium (flags that keep it off this machine's closed network)."
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if chromium is None: pytest.fail('chromium is not installed: run `make chromium` (Debian package `chromium`)')
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                        '--disable-background-networking', '--disable-component-update', '--disable-sync',
                        f'--user-data-dir={profile}', f'--window-size={size[0]},{size[1]}', f'--screenshot={out}', url],
                       check=True, capture_output=True, timeout=120)
    return Image.open(out).convert('RGB')

@pytest.mark.parametrize('page', ['index.html', 'medical_summaries.html'])
def test_page_renders(site, page):
    "The home page and the worked example render in a browser: text, the theme's navbar, not a blank page."
    out = DOCS/f'_screenshot_{Path(page).stem}.png'
    img = screenshot((DOCS/page).as_uri(), out)
    assert img.size == (1280, 900)
    gray = img.convert('L')
    dark = sum(gray.histogram()[:128]) / (img.size[0]*img.size[1])  # text, code and navbar pixels
    colors = len(img.getcolors(maxcolors=1_000_000) or [])
    assert dark > 0.02, f'screenshot {out} is nearly blank ({dark:.1%} dark pixels)'
    assert colors > 50, f'screenshot {out} has only {colors} colours: no rendered text'
    # the navbar is the site's primary colour, so the theme and its CSS loaded
    r,g,b = img.getpixel((img.size[0]//2, 20))
    assert b > 150 and r < 100, f'navbar colour {(r,g,b)} is not the theme colour: CSS missing?'

def test_every_page_in_a_browser(site):
    """Every page opened in headless Chromium (tools/site_check.py): no warnings, tracebacks or machine paths in what it shows, no
    text taken for a tag, no table or output wider than its column at 1280 or 1024 px, no empty Details cell, every image loaded,
    no raw LaTeX, every link to a page and anchor that exists (none to the public site). Prints a summary per page."""
    sys.path.insert(0, str(ROOT/'tools'))
    from site_check import check_site, summary
    problems = check_site(DOCS)
    print(summary(problems))
    assert len(problems) == len(list(DOCS.glob('*.html'))) > 20
    bad = {page: p for page, p in problems.items() if p}
    assert not bad, '\n'.join(f'{page}: {kind}: {items[:5]}' for page, p in bad.items() for kind, items in p.items())

NEWCOMER_PATH = [('install.html', 'index.html#quickstart'), ('index.html', 'your_own_data.html'), ('your_own_data.html', 'ship.html')]

def test_a_newcomer_path_from_install_to_a_shipped_model(site):
    "Install page -> quickstart -> own data -> export: each page links to the next step, and the link's page and anchor exist."
    for page, target in NEWCOMER_PATH:
        html = (DOCS/page).read_text()
        assert f'href="{target}"' in html, f'{page} has no link to {target}'
        name, _, anchor = target.partition('#')
        assert (DOCS/name).exists() and (not anchor or f'id="{anchor}"' in (DOCS/name).read_text()), f'{target} does not exist'

def test_tiny_model_outputs_are_never_shown_as_results():
    """A cell that runs a tiny random model (CI's smoke tests) shows no table or chart on a page unless the text just before it says
    it is a tiny model's; otherwise it carries `#| output: false` (or is hidden). A tiny model's numbers are never a result."""
    unlabelled = []
    for nb_path in notebooks():
        cells = nbformat.read(nb_path, as_version=4).cells
        for prev, c in zip([None, *cells], cells):
            src = c.source if c.cell_type == 'code' else ''
            if not re.search(r'\btiny', src) or shows_no_output(src) or directives(src) & {'export', 'exporti'}: continue  # the library's own code
            shows = any(k in o.get('data', {}) for o in c.get('outputs', []) for k in ('text/html', 'image/png'))
            told = prev is not None and prev.cell_type == 'markdown' and 'tiny' in prev.source.lower()
            if shows and not told: unlabelled.append(f'{nb_path.name}: {src.splitlines()[0][:70]}')
    assert not unlabelled, unlabelled

def test_saved_widgets_say_what_they_are():
    """JupyterLab shows a saved widget's text form until its cell runs again: it must say what the widget is, not repeat ipywidgets'
    constructor (`VBox(children=(...`); and no progress bar is saved as a widget."""
    bad = []
    for nb_path in notebooks():
        for c in nbformat.read(nb_path, as_version=4).cells:
            for o in c.get('outputs', []):
                if 'application/vnd.jupyter.widget-view+json' not in o.get('data', {}): continue
                text = o['data'].get('text/plain', '')
                if not text.startswith('[') or 'interactive widget' not in text: bad.append(f'{nb_path.name}: {text[:60]}')
    assert not bad, bad

PICTURED = [('14_dashboard.ipynb', 'the dashboard', True), ('14_dashboard.ipynb', 'the control panel', True),
            ('15_eval.ipynb', 'the explorer', True), ('03_data.ipynb', 'the pair browser', False)]

@pytest.mark.parametrize('nb_name,what,real_run', PICTURED)
def test_every_widget_is_pictured_on_its_page(site, nb_name, what, real_run):
    """The dashboard, the control panel and the explorer are pictured from a real run (a slow cell's saved output), the pair browser
    on the product pairs through the real tokenizer: each as a static copy that says it is one (a page has no kernel behind it)."""
    copy = f'a static copy of {what}: nothing here responds'
    cells = [c for c in nbformat.read(ROOT/'nbs'/nb_name, as_version=4).cells
             if any(copy in str(o.get('data', {}).get('text/html', '')) for o in c.get('outputs', []))]
    assert cells, f'{nb_name} saves no static copy of {what}'
    assert not real_run or any('#| slow' in c.source for c in cells), f'the copy of {what} in {nb_name} is not from a real run (a slow cell)'
    assert copy in (DOCS/page_name(ROOT/'nbs'/nb_name)).read_text(), f'{page_name(ROOT/"nbs"/nb_name)} does not show {what}'

def figures(text:str)->list:
    "The numbers a text quotes (`94%`, `0.355`, `1,000`), HTML entities left out."
    return re.findall(r'(?<![\w.])\d[\d,]*(?:\.\d+)?%?', re.sub(r'&#?\w+;', ' ', text))

def quoted(text:str)->list:
    "Each number in `text` as (value, decimal places), a percentage as a fraction (`94%` -> (0.94, 2)), thousands separators dropped."
    out = []
    for f in figures(text):
        n = f.replace(',', '')
        places = len(n.rstrip('%').partition('.')[2]) + (2 if n.endswith('%') else 0)
        out.append((float(n.rstrip('%')) / (100 if n.endswith('%') else 1), places))
    return out

def found(figure:str, numbers:list)->bool:
    """Whether `figure` is among `numbers` (from `quoted`) at its precision or finer: `18%` is found as 0.181 or 0.18, `92%` not as 0.9,
    a whole number only as itself."""
    (v, places), = quoted(figure)
    return any(p >= places and round(x, places) == round(v, places) and (places or x == v) for x, p in numbers)

def shown_text(cells:list)->str:
    "Markdown and saved outputs of `cells`, thousands separators removed."
    outs = [str(o.get('text', '')) + str(o.get('data', {}).get('text/plain', '')) + str(o.get('data', {}).get('text/html', ''))
            for c in cells for o in c.get('outputs', [])]
    return '\n'.join([c.source for c in cells if c.cell_type == 'markdown'] + outs).replace(',', '')

def test_figures_quoted_up_front_come_from_the_runs():
    """Each figure in a chapter's "The result" callout is in that chapter's own prose or saved outputs, and each figure in the home page's
    results at a glance is in some chapter: a figure quoted at the top cannot drift from the run it came from unnoticed."""
    missing, chapters, callouts = [], {}, 0
    for nb_path in notebooks():
        cells = nbformat.read(nb_path, as_version=4).cells
        chapters[nb_path.name] = quoted(shown_text(cells))
        for c in [c for c in cells if c.cell_type == 'markdown' and '## The result' in c.source]:
            rest, callouts = quoted(shown_text([x for x in cells if x is not c])), callouts + 1
            missing += [f'{nb_path.name}: {f}' for f in figures(c.source) if not found(f, rest)]
    home = [c.source for c in nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4).cells if 'Results at a glance' in c.source]
    assert home and callouts >= 7, (len(home), callouts)
    book = [x for name, numbers in chapters.items() if name != 'index.ipynb' for x in numbers]
    for line in home[0].splitlines():  # a row of the results table against the chapter it names, the rest against the book
        linked = re.findall(r'\]\(([\w.]+\.ipynb)\)', line)
        where = chapters[linked[0]] if line.startswith('|') and linked else book
        missing += [f'index.ipynb: {f} in {line[:50]}' for f in figures(re.sub(r'\]\([^)]*\)', ']', line)) if not found(f, where)]
    assert not missing, missing

def test_chapters_with_slow_cells_say_so_at_the_top():
    """Run All runs the slow cells too, and they train or measure the real model for minutes: every chapter that has some says so, and
    how many, in the note at its top (the home page's one slow cell is its quickstart, which says what it runs)."""
    for nb_path in notebooks():
        cells = nbformat.read(nb_path, as_version=4).cells
        n = sum('slow' in directives(c.source) for c in cells if c.cell_type == 'code')
        if nb_path.name == 'index.ipynb' or not n: continue
        note = next((c.source for c in cells[:3] if c.cell_type == 'markdown' and 'Running this notebook' in c.source), '')
        says = 'runs the cell marked `#| slow`' if n == 1 else f'runs the {n} cells marked `#| slow`'
        assert says in note, f'{nb_path.name} has {n} slow cells; the note at its top should say "{says}"'

def test_notebooks_are_numbered_in_reading_order():
    "The file names' numbers follow the sidebar of `_quarto.yml`, so the folder lists the chapters in the order the site reads them."
    import yaml
    def pages(items):
        for it in items:
            if isinstance(it, str): yield it
            else: yield from pages(it.get('contents', []))
    order = [p for p in pages(yaml.safe_load((ROOT/'_quarto.yml').read_text())['website']['sidebar']['contents']) if p[0].isdigit()]
    assert order == sorted(order, key=lambda p: int(p.split('_')[0])), order
    assert sorted(order) == sorted(nb.name for nb in notebooks() if nb.name[0].isdigit()), 'a notebook missing from the sidebar, or a sidebar entry without its notebook'
