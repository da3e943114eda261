"""Files -> articles -> sentences -> chunks.

``archive``    walk an archive (folder or file) and read its articles, reporting bad files and lines
``parsers``    the formats: seed text files, JSON Lines, JSON, CSV/TSV (10kGNAD's layout too)
``cleaning``   HTML, entities, invisible and control characters, NFC; titles from text
``sentences``  a German-aware sentence splitter
``chunking``   sentence-aligned chunks measured in tiktoken tokens, within the model's limit
"""
