"""Files -> articles -> sentences -> chunks: reading archives, cleaning text, splitting and chunking."""
