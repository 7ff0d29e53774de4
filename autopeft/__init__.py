"""autopeft: automated, memory-aware search over parameter-efficient fine-tuning methods.

The top level stays light: heavy libraries (torch, ray, transformers, peft, pynvml) are
imported only inside the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from autopeft.budget import Budget
from autopeft.errors import AutopeftError

__all__ = ["AutopeftError", "Budget", "__version__"]
