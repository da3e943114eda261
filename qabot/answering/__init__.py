"""A question -> ranked passages -> the answer: retriever, rankings, picking, dedupe, dates, conversation."""
