"""Synthetic twins of the generators: one module per product that has one, beside the generator it tests.

A twin is a made-up world with a known answer, shaped like the real inputs, on which the generator's
whole chain runs (:mod:`.sm_mlda`, :mod:`.sm_1km`, :mod:`.freeze_thaw`). Each twin module imports its
generator (downward); no generator imports a twin. Every output of a twin is labelled
:attr:`products.data_kind.DataKind.SYNTHETIC`.
"""
