import sys
from pathlib import Path

# fake_results (hand-built Results) lives in tests/advise; the test folders are not packages.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "advise"))
