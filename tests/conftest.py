import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "ci")
os.environ.setdefault("MPLBACKEND", "Agg")

TOOLS = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS) not in sys.path:  # the dataset generator lives with the maintainer tools
    sys.path.insert(0, str(TOOLS))
