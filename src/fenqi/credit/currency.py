"""Which currency a purchase is in (pure; issue 24 item 13).

An order states its currency; it must be the shop's (what the shop sells in) and the credit
account's (what the product lends in). fenqi converts nothing: a CNY shop's 10,000 fen are not
$100 on a USD account, they are refused. Likewise a shop's shoppers apply only for products in
the shop's currency.
"""

from __future__ import annotations

from fenqi.credit.errors import CreditError


def check_order_currency(order_currency: str, shop_currency: str, account_currency: str) -> None:
    """Refuse (422 `currency_mismatch`, naming the field `currency`) an order whose currency is
    not both the shop's and the account's."""
    if order_currency != shop_currency:
        raise CreditError(
            f"currency: the order is in {order_currency} but the shop sells in {shop_currency}",
            code="currency_mismatch",
            field="currency",
            shop_currency=shop_currency,
        )
    if order_currency != account_currency:
        raise CreditError(
            f"currency: the order is in {order_currency} but the credit account lends in "
            f"{account_currency}",
            code="currency_mismatch",
            field="currency",
            account_currency=account_currency,
        )


def check_product_currency(product_name: str, product_currency: str, shop_currency: str) -> None:
    """Refuse an application through a shop for a product in another currency."""
    if product_currency != shop_currency:
        raise CreditError(
            f"product: {product_name} lends in {product_currency} but the shop sells in "
            f"{shop_currency}",
            code="currency_mismatch",
            field="product",
            shop_currency=shop_currency,
        )
