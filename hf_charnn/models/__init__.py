"""
The models: the three files that travel with every saved model as remote code (configuration, modeling,
tokenization: they import only each other, torch, numpy and transformers), and `auto.py`, which registers them with
transformers' Auto classes and loads saved folders.
"""
