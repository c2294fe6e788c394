"""The main job: a full ``replace`` load of a whole Streak account.

    python pipelines/streak_full.py            # your account (API key from secrets.toml or env)
    python pipelines/streak_full.py --demo     # the built-in sandbox's demo account, no key needed

Exit 0 on success; on failure one line on stderr naming the cause, a non-zero exit, and the
destination keeps its previous complete load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
