"""Sphinx configuration of the documentation site (``sphinx-build -W docs docs/_build``)."""

import tacitrec

project = "tacitrec"
author = "the tacitrec developers"
release = version = tacitrec.__version__

extensions = [
    "myst_parser",  # the pages are Markdown; the README, RESULTS.md and CHANGELOG are included
    "numpydoc",  # the docstrings are NumPy style
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # README links such as (#migrating-from-implicit) resolve

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True, "show-inheritance": True}
autodoc_typehints = "none"  # the signatures and the Parameters sections say it
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

intersphinx_mapping = {}  # no network at build time: references stay inside the site
html_theme = "alabaster"
html_title = f"tacitrec {release}"
html_static_path = []
