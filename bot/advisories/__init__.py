"""Security advisories matched to hosts: VMSA pages, the advisory-list API, CVE records, CISA KEV."""
