"""Loading and checking funder and program files.

Files live beside the products: `funding/catalog/funders/*.toml` and
`funding/catalog/programs/*.toml`, plus an operator's folder (FENQI_FUNDING_DIR, with the same
two subfolders) whose files override the shipped ones by id. A bad file is refused whole, with an
error naming the file, the field and the rule broken; the catalog is checked as a whole too
(programs name known funders and products in their currency, the platform's share is at least
the regulatory floor), so nothing half-loads.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from fenqi.errors import FenqiError
from fenqi.funding.model import Funder, FunderKind, FundingCatalog, Program
from fenqi.products.model import Product

CATALOG_DIR = Path(__file__).parent / "catalog"
FUNDERS = "funders"
PROGRAMS = "programs"


class FundingConfigError(FenqiError):
    code = "funding_invalid"
    http_status = 422

    def __init__(self, source: str, field: str, rule: str) -> None:
        super().__init__(f"{source}: {field}: {rule}", source=source, field=field, rule=rule)


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _read(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FundingConfigError(source, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FundingConfigError(source, "(file)", f"not valid TOML: {exc}") from None


_T = TypeVar("_T", Funder, Program)


def _validate(model: type[_T], data: dict[str, Any], path: Path) -> _T:
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        rule = first["msg"].removeprefix("Value error, ")
        field = _field(tuple(first["loc"]))
        head, sep, tail = rule.partition(": ")
        if field == "(file)" and sep and " " not in head:  # "shares: must sum ..."
            field, rule = head, tail
        raise FundingConfigError(str(path), field, rule) from None
    if parsed.id != path.stem:
        raise FundingConfigError(str(path), "id", f"must match the file name {path.stem!r}")
    return parsed


def is_program_file(data: Mapping[str, Any], path: Path) -> bool:
    """A program names its funders' shares; a funder does not."""
    return "shares" in data or path.parent.name == PROGRAMS


def parse_file(path: Path) -> Funder | Program:
    data = _read(path)
    if is_program_file(data, path):
        return _validate(Program, data, path)
    return _validate(Funder, data, path)


def _folders(extra_dir: Path | None) -> list[Path]:
    return [CATALOG_DIR, *([extra_dir] if extra_dir else [])]


def load_funding_catalog(
    products: Mapping[str, Product],
    platform_floor_bp: int,
    extra_dir: Path | None = None,
    extra_files: tuple[Path, ...] = (),
) -> FundingCatalog:
    """Shipped funders and programs, an operator's folder overriding them by id, then single
    files (`fenqi funding check FILE`); checked as a whole against the product catalog."""
    funders: dict[str, tuple[Funder, Path]] = {}
    programs: dict[str, tuple[Program, Path]] = {}
    paths: list[Path] = []
    for folder in _folders(extra_dir):
        for sub in (FUNDERS, PROGRAMS):
            paths.extend(sorted((folder / sub).glob("*.toml")))
    paths.extend(extra_files)
    for path in paths:
        item = parse_file(path)
        if isinstance(item, Program):
            programs[item.id] = (item, path)
        else:
            funders[item.id] = (item, path)
    own_of = _own_per_currency(funders, products)
    for funder, path in funders.values():
        _check_funder(funder, path, products)
    for program, path in programs.values():
        _check_program(
            program,
            path,
            {k: f for k, (f, _) in funders.items()},
            own_of.get(program.currency, ""),
            products,
            platform_floor_bp,
        )
    return FundingCatalog(
        funders={k: f for k, (f, _) in sorted(funders.items())},
        programs={k: p for k, (p, _) in sorted(programs.items())},
        platform_floor_bp=platform_floor_bp,
    )


def _own_per_currency(
    funders: Mapping[str, tuple[Funder, Path]], products: Mapping[str, Product]
) -> dict[str, str]:
    """The own-capital funder of each currency: exactly one per currency, and one for every
    currency a product lends in (a plan no partner funds is the platform's own)."""
    own_of: dict[str, str] = {}
    for funder, path in funders.values():
        if funder.kind is not FunderKind.OWN:
            continue
        if funder.currency in own_of:
            raise FundingConfigError(
                str(path),
                "kind",
                f"exactly one funder of kind 'own' (the platform's capital) per currency is "
                f"needed: {own_of[funder.currency]!r} and {funder.id!r} both lend "
                f"{funder.currency}",
            )
        own_of[funder.currency] = funder.id
    for currency in sorted({p.currency for p in products.values()} - set(own_of)):
        raise FundingConfigError(
            str(CATALOG_DIR / FUNDERS),
            "kind",
            f"exactly one funder of kind 'own' (the platform's capital) per currency is "
            f"needed: none lends {currency}, which a product lends in",
        )
    return own_of


def _check_funder(funder: Funder, path: Path, products: Mapping[str, Product]) -> None:
    for i, name in enumerate(funder.eligibility.products):
        if name not in products:
            raise FundingConfigError(
                str(path), f"eligibility.products[{i}]", f"unknown product {name!r}"
            )


def _check_program(
    program: Program,
    path: Path,
    funders: Mapping[str, Funder],
    own_id: str,
    products: Mapping[str, Product],
    floor_bp: int,
) -> None:
    source = str(path)
    for i, name in enumerate(program.products):
        product = products.get(name)
        if product is None:
            raise FundingConfigError(source, f"products[{i}]", f"unknown product {name!r}")
        if product.currency != program.currency:
            raise FundingConfigError(
                source,
                f"products[{i}]",
                f"product {name!r} lends in {product.currency}, the program in {program.currency}",
            )
    for i, share in enumerate(program.shares):
        funder = funders.get(share.funder)
        if funder is None:
            raise FundingConfigError(
                source, f"shares[{i}].funder", f"unknown funder {share.funder!r}"
            )
        if funder.currency != program.currency:
            raise FundingConfigError(
                source,
                f"shares[{i}].funder",
                f"funder {funder.id!r} lends in {funder.currency}, the program in "
                f"{program.currency}",
            )
    own_share = program.share_of(own_id)
    if own_share < floor_bp:
        raise FundingConfigError(
            source,
            "shares",
            f"the platform's own share ({own_id!r}) is {own_share} bp, under the regulatory "
            f"floor of {floor_bp} bp (FENQI_FUNDING_PLATFORM_FLOOR_BP)",
        )


def catalog_for(ctx: Any) -> FundingCatalog:
    """The running system's funding catalog (its settings and product catalog), loaded once per
    Context and kept on it."""
    cached: FundingCatalog | None = ctx.__dict__.get("_funding_catalog")
    if cached is None:
        cached = load_funding_catalog(
            ctx.catalog, ctx.settings.funding_platform_floor_bp, ctx.settings.funding_dir
        )
        ctx.__dict__["_funding_catalog"] = cached
    return cached
