"""PII scan of tables with Microsoft Presidio, and replay checks of synthetic tables against real ones.

Privacy: not DP. The scan reads the table it is given (a synthetic one, usually); the replay checks
read the real data. Both report counts, rates, scores and masked examples, never a row or a value.
Presidio and the spaCy model are in the ``pii`` extra: ``pip install 'dpsynth[pii]'``.
"""

from dpsynth.pii.replay import ReplayReport, replay_check
from dpsynth.pii.scan import ColumnScan, Finding, PIIScanner, ScanReport, scan_file, scan_table

__all__ = ["ColumnScan", "Finding", "PIIScanner", "ReplayReport", "ScanReport", "replay_check", "scan_file",
           "scan_table"]
