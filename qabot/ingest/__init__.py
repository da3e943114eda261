"""Files -> articles -> sentences -> chunks.

``archive``    walk an archive (folder or file) and read its articles, reporting bad files and lines
``parsers``    the formats: seed text files, JSON Lines, JSON, CSV/TSV (10kGNAD's layout too)
``web``        an HTML page -> an article (trafilatura); ``charset`` its bytes -> text, declaration checked
``warc``       web archives (warcio): every HTML page answered 200
``newsml``     NewsML-G2 and NITF (lxml); ``digitalwires`` dpa's JSON; ``wire`` what they share
``versions``   the newest version of each article wins across the archive
``cleaning``   HTML, entities, invisible and control characters, NFC; titles from text
``sentences``  a German-aware sentence splitter
``chunking``   sentence-aligned chunks measured in tiktoken tokens, within the model's limit
"""
