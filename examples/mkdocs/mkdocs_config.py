"""Write mkdocs.yml into a generated site (the fixture): MkDocs reads the Markdown that memsla's
sitegen wrote to content/, with the built-in theme and navigation."""

import sys
from pathlib import Path

CONFIG = """\
site_name: memsla generated site
docs_dir: content
theme:
  name: mkdocs
markdown_extensions:
  - meta
  - toc
  - tables
  - fenced_code
"""

if __name__ == "__main__":
    Path(sys.argv[1], "mkdocs.yml").write_text(CONFIG)
