"""The valuation engine: pure Python and Decimal, no database, no web framework.

It turns outcome commitments into monetised social value and impact tokens
following valuation method version 1 (see docs in ../shared/docs/valuation-method.md).
"""
