"""qabot: ask a news archive a question and get a cited answer."""
