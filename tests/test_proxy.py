"""The proxy's guard against late and repeated batches: each page's expected node, from the report the plan
was made from (controller/proxy.py)."""

from types import SimpleNamespace

import numpy as np

from pagetide.controller.policies.view import Candidates
from pagetide.controller.proxy import expected_nodes, reported_nodes


def cands(addrs, node):
    a = np.array(addrs, np.uint64)
    return Candidates(a, np.zeros(a.size, np.uint8), np.full(a.size, node, np.int64))


VIEW = SimpleNamespace(tenants=[SimpleNamespace(name="vm0", hot_slow=cands([0x9000, 0x3000], 1),
                                                cold_fast=cands([0x5000], 0), hot_fast=cands([0x1000], 0))])


def test_each_moved_page_expects_the_node_the_report_saw_it_on_in_the_batchs_order():
    seen = reported_nodes(VIEW)["vm0"]
    assert np.frombuffer(expected_nodes(seen, [0x9000, 0x1000, 0x5000, 0x3000]), "<i2").tolist() == [1, 0, 0, 1]


def test_a_page_the_report_did_not_show_means_no_expectation_for_the_call_not_a_guess():
    seen = reported_nodes(VIEW)["vm0"]
    assert expected_nodes(seen, [0x9000, 0x7000]) == b""
    assert expected_nodes(seen, [0xFFFFF000]) == b""          # past the last reported address
    assert expected_nodes(None, [0x9000]) == b"" and expected_nodes(seen, []) == b""
