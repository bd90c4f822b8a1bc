"""Open every page of the built site (`_docs/`) in headless Chromium and list what a reader should never see.

Per page: warnings, tracebacks or machine paths in the text, text the browser took for a tag (`<style>`), a `--flag` typeset as a dash,
a class's signature shown as a function's (`)->None:`), and tables of nothing but zeros (a tiny random model's smoke run shown as if it were a
result); tables and code outputs wider than their column, and numbers broken over two lines (at 1280 and 1024 px); empty Details cells in settings tables; images that did not load, and the same picture shown twice; raw LaTeX; links whose page or anchor does not exist, and
links to the public site that should be relative. `python tools/site_check.py` prints a summary per page; the test
`tests/test_docs.py::test_every_page_in_a_browser` fails on any problem."""
import json, re, shutil, sys
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1280, 1024)
SHOWN_TEXT = re.compile(r'Warning:|Traceback|/root/|/work/|\.venv/|site-packages|Call self as a function|(?<!\w)\u2013[a-z]')  # .venv/: a path into it (the folder name alone is install advice); then a docstring inherited from a builtin; last a `--flag` outside code, which the page typesets as a dash

# What a page shows, measured in the browser. Input code (`.sourceCode` outside outputs) is left out of the text checks:
# a reader sees it as code. Outputs and prose are checked.
PAGE_JS = r"""() => {
  const main = document.querySelector('main') || document.body;
  const shown = main.cloneNode(true);
  shown.querySelectorAll('div.sourceCode, script, style').forEach(e => { if (!e.closest('.cell-output')) e.remove(); });
  const text = shown.innerText || shown.textContent;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, .katex-mathml').forEach(e => e.remove());  // KaTeX keeps the TeX for screen readers
  const details = [];
  for (const t of main.querySelectorAll('table')) {
    const heads = [...t.querySelectorAll('thead th')].map(th => th.innerText.trim());
    const k = heads.indexOf('Details');
    if (k < 0) continue;
    for (const tr of t.querySelectorAll('tbody tr')) {
      const td = tr.children[k];
      if (td && !td.innerText.trim()) details.push(tr.children[0].innerText.trim());
    }
  }
  const tags = [...main.querySelectorAll('*')].filter(e => e instanceof HTMLUnknownElement || (e.tagName === 'STYLE' && e.closest('td, th, p, li')))
                                             .map(e => '<' + e.tagName.toLowerCase() + '> in: ' + (e.parentElement.innerText || '').trim().slice(0, 60));
  const zeros = [...main.querySelectorAll('.cell-output-display table')].filter(t => {  // scores, not counts: two numeric columns or more
    const cells = [...t.querySelectorAll('tbody tr')].flatMap(tr => [...tr.children].map((td, i) => [i, td.innerText.trim()]))
                                                     .filter(([i, x]) => /^-?[0-9.]+$/.test(x));
    return new Set(cells.map(([i]) => i)).size >= 2 && cells.every(([i, x]) => parseFloat(x) === 0);
  }).map(t => 'a table of zeros: ' + (t.innerText || '').trim().split('\n')[0].slice(0, 60));
  const classes = [...main.querySelectorAll('pre')].map(p => (p.innerText || '').trim())  // a class's signature as if it were a function's
                  .filter(t => /^class \w+\(/.test(t) && /\)->None:$/.test(t)).map(t => 'a class shown with ->None: ' + t.split('\n')[0].slice(0, 60));
  return {
    zeros: zeros,
    classes: classes,
    text: text,
    tags: tags,
    latex: (prose.innerText.match(/\\\(|\\\[|\\frac|\$\$/g) || []).length,
    details: details,
    images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
    shown: [...main.querySelectorAll('img')].map(i => { const s = i.getAttribute('src') || '';  // a short fingerprint of each picture
      let h = 0; for (let k = 0; k < s.length; k += 7) h = (h * 31 + s.charCodeAt(k)) | 0; return s.length + ':' + h; }),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  };
}"""

WIDE_JS = r"""() => {
  const main = document.querySelector('main') || document.body;
  const right = main.getBoundingClientRect().right;
  const wide = [];
  for (const el of main.querySelectorAll('table, .cell-output pre, .cell-output-display')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    if (el.scrollWidth > el.clientWidth + 2 || r.right > right + 2)
      wide.push(el.tagName.toLowerCase() + ': ' + (el.innerText || '').trim().split('\n')[0].slice(0, 60));
  }
  const broken = [...main.querySelectorAll('td')].filter(td => /^-?[0-9][0-9.,]*%?$/.test(td.innerText.trim())).filter(td => {  // a number over two lines
    const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT), tops = [];  // the lines its text boxes sit on (not its code boxes' padding)
    for (let n = walk.nextNode(); n; n = walk.nextNode()) { const r = document.createRange(); r.selectNodeContents(n); tops.push(...[...r.getClientRects()].map(x => x.top)); }
    return tops.some(t => Math.abs(t - tops[0]) > 4);
  }).map(td => 'a number broken over lines: ' + td.innerText.trim().replace(/\n/g, ' ') + ' in: ' + (td.closest('table').innerText || '').trim().split('\n')[0].slice(0, 50));
  return wide.concat(broken);
}"""

def chromium()->str:
    path = shutil.which('chromium') or shutil.which('chromium-browser')
    if path is None: raise RuntimeError('chromium is not installed: run `make chromium` (Debian package `chromium`)')
    return path

def text_problems(text:str)->list:
    "Each line of shown text that has a warning, a traceback or a machine path in it (cut to 120 characters)."
    return [l.strip()[:120] for l in text.splitlines() if SHOWN_TEXT.search(l)]

def public_site()->str:
    "The address the site is published at: settings.ini's `doc_host` and `doc_baseurl`, read by nbdev."
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    return cfg.doc_host.rstrip('/') + cfg.doc_baseurl.rstrip('/')

def check_site(site:Path=ROOT/'_docs', public:str|None=None)->dict:
    "Problems by page: {page: {kind: [what]}} for every page of `site`, each opened in headless Chromium."
    from playwright.sync_api import sync_playwright
    public = public or public_site()
    pages = sorted(p.name for p in site.glob('*.html'))
    seen, problems = {}, {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=['--no-sandbox', '--disable-gpu'])
        tab = browser.new_page(viewport={'width': WIDTHS[0], 'height': 900})
        for name in pages:
            tab.set_viewport_size({'width': WIDTHS[0], 'height': 900})
            tab.goto((site/name).as_uri(), wait_until='load')
            seen[name] = tab.evaluate(PAGE_JS)
            wide = []
            for w in WIDTHS:
                tab.set_viewport_size({'width': w, 'height': 900})
                wide += [f'{w}px {x}' for x in tab.evaluate(WIDE_JS)]
            seen[name]['wide'] = wide
        browser.close()
    ids = {name: set(v['ids']) for name, v in seen.items()}
    for name, v in seen.items():
        twice = [f'the same picture {n} times' for f, n in Counter(v['shown']).items() if n > 1]
        p = dict(text=text_problems(v['text']) + v['tags'] + v['zeros'] + v['classes'], wide=v['wide'], details=v['details'], images=v['images'] + twice,
                 latex=[f"{v['latex']} raw LaTeX delimiters"] if v['latex'] else [], links=[])
        for href in v['links']:
            u = urlparse(href)
            if href.startswith(public): p['links'].append(f'absolute link to the public site: {href}'); continue
            if href.endswith('#LNone'): p['links'].append(f'source link without a line: {href}'); continue
            if u.scheme or href.startswith(('mailto:', 'javascript:')): continue  # elsewhere on the web: not checked offline
            target = unquote(u.path) or name
            if target.endswith('/'): target += 'index.html'
            if not (site/target).exists(): p['links'].append(f'no page {target}: {href}')
            elif u.fragment and target in ids and u.fragment not in ids[target]: p['links'].append(f'no anchor #{u.fragment} in {target}')
        problems[name] = {k: sorted(set(x)) for k, x in p.items() if x}
    return problems

def summary(problems:dict)->str:
    "One line per page: the count of each kind of problem, or 'ok'."
    kinds = ['text', 'wide', 'details', 'images', 'latex', 'links']
    lines = [f"{'page':32} " + ' '.join(f'{k:>7}' for k in kinds)]
    for name, p in problems.items(): lines.append(f'{name:32} ' + ' '.join(f'{len(p.get(k, [])):>7}' for k in kinds))
    return '\n'.join(lines)

if __name__ == '__main__':
    problems = check_site()
    print(summary(problems))
    if '-v' in sys.argv: print(json.dumps(problems, indent=1))
    sys.exit(1 if any(problems.values()) else 0)
