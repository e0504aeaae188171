"""The guided first run, typed into ``esxbot run`` on a terminal as a newcomer would type it.

Nothing is configured but a short step time: demo mode, the simulated fleet, the console. Each step
checks the facts a person must see (host, build, state, "resolved"), not whole texts, so wording
changes elsewhere do not break the tour. ``ESXBOT_UPDATE_GOLDEN=1`` also writes the session to
``docs/demo-tour.txt``, the transcript README links to.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from tests.console_pty import Console
from tests.golden import UPDATE

TRANSCRIPT = Path(__file__).parent.parent / "docs" / "demo-tour.txt"
TOKEN = r"`yes (\w+)`"
FIXES = r"Fixes that affect esx01\.lab\.local in newer releases: (\d+)"


def test_guided_tour_on_the_console(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("demo_fleet: {step: 0.3}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TERM": "dumb"}
    started = time.monotonic()
    console = Console([sys.executable, "-m", "bot", "--config", "demo.yaml", "run"], cwd=tmp_path, env=env)
    try:
        console.expect("DEMO MODE")  # said plainly on the first screen, with the tour
        console.expect(r"1\. check esx01")
        console.expect("esxbot> ")

        console.send("check esx01")
        console.expect(r"ESXi 7\.0 Update 2a \(7\.0\.2, build 17867351\)")
        console.expect(r"usb \(mpx\.vmhba32")
        fixes_before = int(console.expect(FIXES).group(1))
        console.expect("PR 2777003")
        console.expect("simulated host")

        console.send("demo break esx01")
        console.expect("starts failing")
        console.expect(r"(?i)warning\b.*esx01\.lab\.local.*boot device")  # the precursor page
        console.expect(r"(?i)critical\b.*esx01\.lab\.local.*lost its bootbank")  # the loss page
        console.expect("@admin")  # you are on call in the demo
        console.send("alerts")
        alert = console.expect(r"#(\d+)\s+(?:g\d+\s+|-\s+)?esx01\.lab\.local\s+bootbank-loss").group(1)

        console.send(f"ack {alert}")
        console.expect(rf"(?i)acknowledged.*(esx01\.lab\.local|#{alert})")

        console.send("patch esx01 to 7.0 U2c")
        console.expect(r"esx01\.lab\.local\s+bootbank\s+FAIL")  # the pre-check keeps a broken host safe
        console.expect("Pre-checks failed")
        console.send("patch esx01 to 7.0 U2c --override bootbank")
        token = console.expect(TOKEN).group(1)
        console.send(f"yes {token}")
        mark = console.mark()
        console.expect(r"running at step 3/6 \(reboot esx01\.lab\.local\)", 60)
        console.expect(r"back: connected.*build 18426014", 60)
        job = console.expect(r"Job #(\d+) patch esx01\.lab\.local: succeeded", 60).group(1)
        console.rewind(mark)
        console.expect(r"(?i)resolved\b.*esx01\.lab\.local.*lost its bootbank", 30)
        console.expect(rf"Job #{job} patch esx01\.lab\.local: succeeded", 60)

        console.send("check esx01")
        console.expect(r"ESXi 7\.0 Update 2c \(7\.0\.2, build 18426014\)")
        console.expect(r"Bootbank\s+mounted")
        card = console.output[console.mark() : console.expect("simulated host").start()]
        after = re.search(FIXES, card)
        assert "PR 2777003" not in card
        assert after is None or int(after.group(1)) < fixes_before
    finally:
        console.close()
    took = time.monotonic() - started
    assert took < 120, f"the tour took {took:.0f} s"
    if os.environ.get(UPDATE) == "1":
        TRANSCRIPT.write_text(_transcript(console.output), encoding="utf-8")


def _transcript(output: str) -> str:
    head = (
        "# esxbot demo tour: `esxbot run` with nothing configured, typed into by tests/test_demo_tour.py\n"
        "# (step time 0.3 s; regenerate with ESXBOT_UPDATE_GOLDEN=1). Tokens and times differ per run.\n\n"
    )
    return head + "\n".join(line.rstrip() for line in output.splitlines()) + "\n"


def test_host_actions_and_a_release_on_the_console(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("demo_fleet: {step: 0.3}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TERM": "dumb"}
    console = Console([sys.executable, "-m", "bot", "--config", "demo.yaml", "run"], cwd=tmp_path, env=env)

    def confirmed(command: str, done: str) -> str:
        console.send(command)
        token = console.expect(TOKEN).group(1)
        console.send(f"yes {token}")
        return console.expect(done + r": (?:succeeded|failed|cancelled)", 60).group(0)

    try:
        console.expect("esxbot> ")
        finished = confirmed("shutdown esx02", r"Job #\d+ shutdown esx02\.lab\.local")
        assert finished.endswith("succeeded")
        console.expect(r"BMC esx02-bmc: off \(forced-after-timeout")  # GracefulShutdown ignored, ForceOff
        console.send("hosts")
        console.expect(r"esx02\.lab\.local .* notResponding")

        assert confirmed("power on esx02", r"Job #\d+ power-on esx02\.lab\.local").endswith("succeeded")
        console.expect(r"back: connected, power poweredOn")
        console.send("hosts")
        console.expect(r"esx02\.lab\.local .*ESXi 7\.0 Update 2a\s+usb\s+connected\n")  # bootbank back too

        assert confirmed(
            "maintenance enter esx03 --evacuate", r"Job #\d+ maintenance-enter esx03\.lab\.local"
        ).endswith("succeeded")
        console.send("hosts esx03")
        console.expect(r"esx03\.lab\.local .*connected, maintenance")

        console.send("demo release 7.0 U2d")
        mark = console.mark()
        console.expect(r"published as if a release source had just seen it")
        console.rewind(mark)
        console.expect(r"New release: ESXi 7\.0 Update 2d")
        console.expect(r"PR \d+\s+affects pflex01")
    finally:
        console.close()
    assert console.output.count("New release: ESXi 7.0 Update 2d") == 1
