"""docs/privacy.md's roles table says exactly what ROLE_PERMISSIONS grants."""

from __future__ import annotations

from pathlib import Path

from fenqi.privacy.staff import ROLE_PERMISSIONS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def test_roles_table_matches_code() -> None:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| permission | admin"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    roles = [Role(name) for name in header[1:]]
    granted: dict[Role, set[Permission]] = {role: set() for role in roles}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        permission = Permission(cells[0].split()[0])
        for role, cell in zip(roles, cells[1:], strict=True):
            if cell == "✓":
                granted[role].add(permission)
    assert set(roles) == set(Role)
    assert {r: frozenset(p) for r, p in granted.items()} == dict(ROLE_PERMISSIONS)
