"""The diagnosis rules as they were before the run's index (probe_engine/diagnose/index.py):
each walking every cell. Kept word for word (but their imports) as the reference the indexed
rules must agree with, finding for finding, on real runs (tests/test_diagnose_index.py).
Rules the index did not restructure are the package's own."""

from __future__ import annotations

from probe_engine.diagnose import RULES, Rule

from .address_family import address_family
from .cut_short import cut_short
from .dns_failure import dns_failure
from .proxy_differs import proxy_differs
from .readiness_race import readiness_race
from .search_list import search_list
from .source_differs import source_differs
from .source_down import source_down
from .target_down import target_down
from .tls_trust import tls_trust

REFERENCE: dict[str, Rule] = {
    **RULES,
    "cut-short": cut_short,
    "source-down": source_down,
    "address-family": address_family,
    "search-list": search_list,
    "readiness-race": readiness_race,
    "proxy-differs": proxy_differs,
    "tls-trust": tls_trust,
    "source-differs": source_differs,
    "target-down": target_down,
    "dns-failure": dns_failure,
}
RESTRUCTURED = [name for name, rule in REFERENCE.items() if rule is not RULES[name]]
