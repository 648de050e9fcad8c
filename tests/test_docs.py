"""The docs' relative links lead somewhere: every file they name exists, every #anchor is a heading."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def anchor(heading: str) -> str:
  """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: str) -> set[str]:
  with open(path) as f:
    text = re.sub(r"```.*?```", "", f.read(), flags=re.S)  # a '#' in a code block is no heading
  return {anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def test_relative_links_and_anchors_exist():
  pages = ["README.md"] + sorted(glob.glob("docs/**/*.md", root_dir=REPO, recursive=True))
  broken = []
  for page in pages:
    path = os.path.join(REPO, page)
    with open(path) as f:
      links = re.findall(r"\]\(([^)\s]+)\)", f.read())
    for link in links:
      if re.match(r"[a-z]+:", link):  # https://..., mailto:
        continue
      target, _, name = link.partition("#")
      target_path = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
      if not os.path.exists(target_path):
        broken.append(f"{page}: {link} (no such file)")
      elif name and target_path.endswith(".md") and name not in anchors(target_path):
        broken.append(f"{page}: {link} (no such heading)")
  assert pages and not broken, "\n".join(broken)


def test_anchor_follows_github():
  assert anchor("GRU against LSTM: fewer gates, similar performance? (lecture 14.2.3)") == (
      "gru-against-lstm-fewer-gates-similar-performance-lecture-1423")
