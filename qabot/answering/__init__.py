"""A question -> ranked passages -> the answer.

``retriever``       Retriever: open an index, ``ask``, ``search``, ``refine``; the I/O around the steps
``questions``       clean a question (the one place every front end goes through)
``legs``            the rankings the store makes for a question: dense, sentence, keyword
``fusion``          pure: reciprocal-rank fusion, blends, the keyword bonus, neighbouring chunks
``ranking_steps``   pure steps: candidates -> rerank -> collapse -> merge -> renumber
``reranker_blend``  blending a cross-encoder's scores with the bi-encoder's (optional seam)
``picking``         the answer sentence across the top passages
``answer_span``     a reader model's span -> the answer sentence (optional seam)
``dedupe``          near-duplicate passages (the same wire story) collapsed
``dates``           date expressions in a question -> a date filter
``conversation``    follow-ups, shared by the terminal chat, the bot and the HTTP API
``llm_answer``      the LLM reply: prompt, call, checked composition (optional seam)
``citations``       the pure citation check of an LLM reply; ``normalising`` its numbers, dates, names
"""
