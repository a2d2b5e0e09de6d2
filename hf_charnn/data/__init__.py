"""
Data: where a run's characters come from and how training reads them.

- `sources.py`: files (plain, gzip, zip), `datasets` datasets and the whole text8, checked and encoded block by block;
- `cache.py`: the memory-mapped corpus cache and the one digest of every fingerprint;
- `vocabulary.py`: the one vocabulary choice (`--vocab auto|text8|chars|bytes`) for corpora and labeled texts;
- `corpus.py`: an LM corpus's splits in the run's vocabulary; `windows.py`: its training windows (TBPTT streams);
- `labeled.py`: labeled texts for classifiers (files or a dataset, label ids, stratified split, padded batches).
"""
