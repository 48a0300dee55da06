"""`make test` on a fresh machine installs what the browser tests need (issue 24 item 7): the
Makefile's test target and `.ci/run` call one script, which installs Chromium when missing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure-chromium.sh"


def test_make_test_and_ci_both_ensure_chromium() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_target = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_target and "browser" in test_target.group(1).split()
    assert re.search(r"^browser:\n\tscripts/ensure-chromium.sh$", makefile, re.M)
    assert "scripts/ensure-chromium.sh" in (ROOT / ".ci" / "run").read_text()


def test_the_script_installs_chromium_when_missing(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    apt = tmp_path / "apt-get"  # records its calls; "installs" chromium
    apt.write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n'
        f'[ "$1" = install ] && printf "#!/bin/sh\\necho Chromium 1\\n" > {chromium} '
        f"&& chmod +x {chromium}\nexit 0\n"
    )
    apt.chmod(0o755)
    env = {**os.environ, "CHROMIUM": str(chromium), "APT_GET": str(apt)}
    if os.geteuid() != 0:
        return  # the script would use sudo; nothing to check without root
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "update -qq",
        "install -y -qq chromium",
    ]
    assert "installed Chromium 1" in out.stdout
    again = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0 and again.stdout == ""  # present: nothing to do
    assert len((tmp_path / "calls").read_text().splitlines()) == 2
