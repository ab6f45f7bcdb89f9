"""Every finding's words, in one place: one phrase per rule id, all with one signature
`(cause, result) -> Words`, registered in PHRASES.

Rules find (cause.py: subject, failing and contrasting cells, facts); this module says. The
shared grammar (grammar.py) counts sources the same way everywhere ("from 2 of 4 sources that
probed it"), and the clause readers (phrasing.py: what an errno means; differences.py and
service_causes.py: what two rows' or a Service's facts mean) give every rule the same
sentence for the same fact. A title states what fails and from where; the detail names each
source once and never contradicts the title.
"""

from __future__ import annotations

from ...results import MatrixResult
from ..cause import Cause
from .clients import proxy_differs, source_differs, tls_trust
from .cluster import cluster_address, service_facts, via_differs
from .common import Phrase, Words
from .down import ping_filtered, target_down
from .names import address_family, dns_failure, readiness_race, search_list
from .places import container_network, cut_short, source_down

PHRASES: dict[str, Phrase] = {
    "cut-short": cut_short,
    "container-network": container_network,
    "source-down": source_down,
    "via-differs": via_differs,
    "cluster-address": cluster_address,
    "address-family": address_family,
    "search-list": search_list,
    "readiness-race": readiness_race,
    "proxy-differs": proxy_differs,
    "tls-trust": tls_trust,
    "source-differs": source_differs,
    "target-down": target_down,
    "service-facts": service_facts,
    "dns-failure": dns_failure,
    "ping-filtered": ping_filtered,
}


def phrase(found: Cause, result: MatrixResult) -> Words:
    """The words of a cause, by its rule id."""
    return PHRASES[found.rule](found, result)


__all__ = ["PHRASES", "Words", "phrase"]
