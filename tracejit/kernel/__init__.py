"""The kernel layer every backend uses: the index algebra (index.py), value
ranges (ranges.py), the base snippet table (snippets.py), the shared kernel
writer (writer.py) and buffer liveness of the plans (liveness.py)."""
