"""PII scan of tables with Microsoft Presidio, and copy checks of synthetic tables against real ones.

Privacy: not DP. The scan reads the table it is given (a synthetic one, usually); the copy checks
read the real data. Both report counts, rates, scores and masked examples, never a row or a value.
Presidio and the spaCy model are in the ``pii`` extra: ``pip install 'dpsynth[pii]'``.
"""

from dpsynth.pii.findings import ColumnScan, ScanFinding, ScanReport
from dpsynth.pii.replay import CopyRate, CopyReport, copy_check
from dpsynth.pii.scan import PIIScanner, scan_file, scan_table

__all__ = ["ColumnScan", "CopyRate", "CopyReport", "PIIScanner", "ScanFinding", "ScanReport", "copy_check", "scan_file",
           "scan_table"]
