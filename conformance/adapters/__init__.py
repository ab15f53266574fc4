"""Bundled drivers: memory (the reference), fs, s3 and dropbox."""
