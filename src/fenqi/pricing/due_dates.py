"""Due dates of a plan's periods, from the product's billing rules and the purchase date.

Revolving products bill a purchase on the first statement day after it (a purchase on the
statement day itself falls in the next cycle), and each installment is due on the due day that
follows its statement, so the longest interest-free period runs from just after one statement
day to the due date of the next statement (41 days on a Huabei-style 1st/10th product, counting
both ends). Pay-in-N products count days from the purchase; loans count months from it.
"""

from __future__ import annotations

import calendar as std_calendar
from datetime import date, timedelta

from fenqi.calendars import roll_to_working_day
from fenqi.products.model import PeriodUnit, Product, ProductKind


def add_months(day: date, months: int, day_of_month: int | None = None) -> date:
    """The same day-of-month `months` later, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = std_calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day_of_month or day.day, last))


def first_statement_date(product: Product, purchase_date: date) -> date:
    """The statement that first bills a purchase: the next statement day strictly after it."""
    statement_day = product.billing.statement_day
    assert statement_day is not None
    this_month = purchase_date.replace(day=statement_day)
    return this_month if this_month > purchase_date else add_months(this_month, 1)


def statement_due_date(product: Product, statement_date: date) -> date:
    """The due date of a statement cut on statement_date (before any holiday roll)."""
    due_day = product.billing.due_day
    assert due_day is not None
    due = statement_date.replace(day=due_day)
    return due if due > statement_date else add_months(due, 1)


def roll(product: Product, day: date) -> date:
    return (
        roll_to_working_day(day, product.billing.calendar) if product.billing.holiday_roll else day
    )


def due_dates(product: Product, purchase_date: date, count: int) -> list[date]:
    billing = product.billing
    if product.kind is ProductKind.REVOLVING:
        first = first_statement_date(product, purchase_date)
        return [
            roll(product, statement_due_date(product, add_months(first, i))) for i in range(count)
        ]
    if product.installments.period is PeriodUnit.DAYS or product.kind is ProductKind.PAY_IN_N:
        interval = billing.interval_days
        first_offset = billing.first_payment_days_after_purchase
        assert interval is not None
        offset = interval if first_offset is None else first_offset
        return [
            roll(product, purchase_date + timedelta(days=offset + i * interval))
            for i in range(count)
        ]
    return [roll(product, add_months(purchase_date, i + 1)) for i in range(count)]


def periods_per_year(product: Product) -> int | float:
    """For the nominal annualized rate: 12 for monthly periods, 365 ÷ interval for day periods."""
    if product.kind is ProductKind.PAY_IN_N or product.installments.period is PeriodUnit.DAYS:
        assert product.billing.interval_days is not None
        return 365 / product.billing.interval_days
    return 12


def max_interest_free_days(product: Product, purchase_date: date) -> int:
    """Days from purchase to the due date of its statement, counting both ends."""
    if product.kind is not ProductKind.REVOLVING:
        return 0
    due = roll(product, statement_due_date(product, first_statement_date(product, purchase_date)))
    return (due - purchase_date).days + 1
