"""Release intelligence: release notes and build catalogs → fixes, matched against hosts.

``sources/`` watches feeds, catalogs and notes pages; ``matching`` + ``match_rules`` + ``fact_index``
decide per (fix, host); ``service`` stores, announces and answers; ``fix_hint`` names the release that
fixes an alert's fault.
"""
