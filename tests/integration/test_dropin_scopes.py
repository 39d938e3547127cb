# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drop-ins judged on their own, prefix drop-ins and type-wide drop-ins, on real systemd 252 and 257."""

from __future__ import annotations

from typing import Any

from conftest import BenchHost, start_count

ORDERING = {"Unit": {"Wants": "network-online.target", "After": "network-online.target"}}


def dropin(**args: Any) -> dict[str, Any]:
    return {"name": "dropin", "unitcraft.systemd.dropin": args}


def test_ordering_dropin_on_rc_local_installs_with_the_vendor_problem_as_a_warning(bench_host: BenchHost) -> None:
    host = bench_host
    path = "/etc/systemd/system/rc-local.service.d/order.conf"
    try:
        # the vendor unit's own flaw: /etc/rc.local does not exist on these hosts
        assert host.exec("systemd-analyze", "verify", "rc-local.service", check=False).returncode != 0
        result = host.play([dropin(name="rc-local.service", dropin="order", sections=ORDERING)]).results[0]
        assert result["changed"] is True
        assert any("/etc/rc.local" in w and "without the drop-in" in w for w in result["warnings"])
        assert any("/etc/rc.local" in line for line in result["validation"])
        assert path in host.systemctl_show("rc-local.service", "DropInPaths")["DropInPaths"]
        # a drop-in that brings its own problem still fails, and nothing is written
        broken = {"Unit": {"After": "network-online.target"}, "Service": {"ExecStartPre": "/nonexistent/prog"}}
        failed = host.play([dropin(name="rc-local.service", dropin="broken", sections=broken)],
                           expect_failure=True).results[0]
        assert "/nonexistent/prog" in failed["msg"]
        assert host.read_file("/etc/systemd/system/rc-local.service.d/broken.conf") is None
    finally:
        host.play([dropin(name="rc-local.service", dropin="order", state="absent")])


def test_prefix_dropin_applies_to_matching_units_and_restarts_them_once(bench_host: BenchHost) -> None:
    host = bench_host
    host.sh("printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/feed-alpha.service; "
            "systemctl daemon-reload; systemctl start feed-alpha.service")
    task = dropin(name="feed-.service", dropin="limits", sections={"Service": {"Nice": 7}})
    try:
        started = start_count(host, "feed-alpha.service")
        result = host.play([task]).results[0]
        assert result["changed"] is True and result["path"] == "/etc/systemd/system/feed-.service.d/limits.conf"
        assert result["units"][0]["restarted_instances"] == ["feed-alpha.service"]
        st = host.systemctl_show("feed-alpha.service", "DropInPaths", "Nice")
        assert st["DropInPaths"] == "/etc/systemd/system/feed-.service.d/limits.conf" and st["Nice"] == "7"
        assert start_count(host, "feed-alpha.service") == started + 1
        assert host.play([task]).results[0]["changed"] is False
        assert start_count(host, "feed-alpha.service") == started + 1
        bad = host.play([dropin(name="feed-.service", dropin="bad", sections={"Service": {"Typo": "x"}})],
                        expect_failure=True).results[0]
        assert "Typo" in bad["msg"]
    finally:
        host.play([dropin(name="feed-.service", dropin="limits", state="absent")])
        host.sh("systemctl stop feed-alpha.service; rm -f /etc/systemd/system/feed-alpha.service; "
                "systemctl daemon-reload", check=False)


def test_type_wide_dropin_is_applied_where_systemd_reads_it(bench_host: BenchHost) -> None:
    host = bench_host
    task = dropin(name="service", dropin="unitcraft-test", sections={"Service": {"Environment": "FLEET=1"}})
    path = "/etc/systemd/system/service.d/unitcraft-test.conf"
    try:
        result = host.play([task]).results[0]
        assert result["changed"] is True and result["path"] == path
        assert any("every .service unit" in w for w in result["warnings"])
        # measured: systemd 252 and 257 both read service.d/ (systemd 245 and later)
        shown = host.systemctl_show("systemd-journald.service", "DropInPaths", "Environment")
        assert path in shown["DropInPaths"] and "FLEET=1" in shown["Environment"]
        assert host.play([task]).results[0]["changed"] is False
    finally:
        host.play([dropin(name="service", dropin="unitcraft-test", state="absent")])
    assert path not in host.systemctl_show("systemd-journald.service", "DropInPaths")["DropInPaths"]
