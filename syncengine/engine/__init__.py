"""The sync engine: plain functions over frozen dataclasses (DESIGN §6).

Sub-packages and modules: ``mapping`` (canonical records per kind, both
directions, hashes and three-way merge); fetch / match / plan / apply live
beside it. Nothing here touches requests, views or HTTP clients directly.
"""
