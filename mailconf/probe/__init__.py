"""The live relay prober: `probe(host, port)` tries every relay trick of the catalogue over SMTP.

Only ever connects to the hosts it is given. Never sends DATA.
"""

from mailconf.probe.output import run_cli
from mailconf.probe.prober import Outcome, ProbeReport, Result, Verdict, classify, probe, probe_many
from mailconf.probe.tricks import CATALOGUE, EXTRA, NMAP, Trick

__all__ = [
    "CATALOGUE",
    "EXTRA",
    "NMAP",
    "Outcome",
    "ProbeReport",
    "Result",
    "Trick",
    "Verdict",
    "classify",
    "probe",
    "probe_many",
    "run_cli",
]
