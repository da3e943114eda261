"""The evaluation: retrieval and answer sentences measured on a SQuAD-format dev set (XQuAD).

    dev_set   the SQuAD file -> paragraphs to index and questions per language and half
    metrics   ranks and answers -> recall@k, MRR, sentence hit@1, the report and its table (pure)
    run       index the paragraphs, ask every question through the public Retriever, score it
    command   ``scripts/evaluate.py``'s options and output: ``main(argv, embedder=...)``

Only ``scripts/`` and the tests import it (the quality gate runs ``command.main``); nothing in
qabot does.
"""
