"""Installment schedules, annualized-rate disclosure (IRR) and rate-cap checks. Pure functions."""
