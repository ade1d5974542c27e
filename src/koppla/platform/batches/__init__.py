"""Batch ingestion: files uploaded into a batch, then read, validated, deduplicated and stored.

The web routes put a batch's files on disk (`files`); once its client completes it, the pipeline
process reads them in slices (`reader`), validates every row and stages the valid new ones
(`ingest`, `parts`), keeping its progress in a journal (`journal`) and every refused row with its
problems (`errors`), then appends the staged rows to the dataset's Delta table under a Delta app
transaction, so that a crash at any point replays into exactly what was missing.
"""
